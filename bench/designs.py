"""Benchmark: 1000 recipes from a 1,000,000-book catalog with the random, stratified and dirichlet designs.

    .venv/bin/python bench/designs.py [--books 1000000] [--n 1000] [--k 100] [--clusters 64]

The catalog is built in memory as the columnar table ``lib.table`` returns (ids, tokens, split, cluster), 5% holdout.
Each design's time includes validation, drawing, building and hashing every Recipe, and deduplication. The baseline,
timed in the same process, is the bare draw: 1000 × ``sample_distinct`` of K rows (no recipes built).
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
    args = ap.parse_args()
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
    for design, extra in [("random", {}), ("stratified", {"by": "cluster"}), ("dirichlet", {"by": "cluster"})]:
        t0 = time.perf_counter()
        recipes = make_design(design, table, n=args.n, seed=1, books_per_set=args.k, **extra)
        secs = time.perf_counter() - t0
        assert len({r.id for r in recipes}) == args.n
        print(f"{design:10s} {len(recipes)} recipes × {args.k} books: {secs:.2f} s  ({secs / base:.1f}x baseline)")


if __name__ == "__main__":
    main()
