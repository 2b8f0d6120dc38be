"""Benchmark: 1000 recipes from a 1,000,000-book catalog with the random (plain and balanced), stratified and dirichlet
designs.

    .venv/bin/python bench/designs.py [--books 1000000] [--n 1000] [--k 100] [--clusters 64]

The catalog is built in memory as the columnar table ``lib.table`` returns (ids, tokens, split, cluster), 5% holdout.
Each design's time includes validation, drawing, building and hashing every Recipe, and deduplication. The baseline,
timed in the same process, is the bare draw: 1000 × ``sample_distinct`` of K rows (no recipes built).

    .venv/bin/python bench/designs.py --cluster-library LIB      # what auto-clustering costs a design, per book

With ``--cluster-library`` it times ``cluster_books`` on a real library instead (labels not written; median of 3),
the figure behind ``recipes.clusters.AUTO_CLUSTER_MAX_BOOKS``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bookmix.recipes import make_design
from bookmix.recipes.sampling import sample_distinct


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--clusters", type=int, default=64)
    ap.add_argument("--cluster-library", help="time clustering this library instead")
    args = ap.parse_args()
    if args.cluster_library:
        cluster_timing(args.cluster_library)
        return
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    table = {
        "id": np.array([f"{i:016x}" for i in range(args.books)], dtype=object),
        "tokens": rng.integers(10_000, 500_000, args.books),
        "split": np.where(rng.random(args.books) < 0.05, "holdout", "train").astype(object),
        "cluster": rng.integers(0, args.clusters, args.books),
    }
    print(f"catalog of {args.books:,} books built in {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    for _ in range(args.n):
        sample_distinct(rng, args.books, args.k)
    base = time.perf_counter() - t0
    print(f"baseline: {args.n} bare draws of {args.k} rows: {base:.3f} s")
    cases = [("random", {}), ("random", {"balanced": True}), ("stratified", {"by": "cluster"}),
             ("dirichlet", {"by": "cluster"})]  # fmt: skip
    for design, extra in cases:
        t0 = time.perf_counter()
        recipes = make_design(design, table, n=args.n, seed=1, books_per_set=args.k, **extra)
        secs = time.perf_counter() - t0
        assert len({r.id for r in recipes}) == args.n
        name = design + (" balanced" if extra.get("balanced") else "")
        print(f"{name:19s} {len(recipes)} recipes × {args.k} books: {secs:.2f} s  ({secs / base:.1f}x baseline)")


def cluster_timing(path: str) -> None:
    from bookmix.library import Library
    from bookmix.recipes.clusters import auto_k, cluster_books

    lib = Library.open(path)
    n = len(lib.table(["id"])["id"])
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        cluster_books(lib, min(auto_k(n), n), seed=0, write=False)
        times.append(time.perf_counter() - t0)
    med = sorted(times)[1]
    print(f"clustering {n} books (k {min(auto_k(n), n)}): median {med:.2f} s of 3 = {med / n * 1e3:.1f} ms a book")


if __name__ == "__main__":
    main()
