"""Benchmark: batch assembly of a 100-book, 25M-token recipe stream (sparsity + interleaving) on one core.

    .venv/bin/python bench/stream.py [--books 100] [--book-tokens 500000] [--keep 0.5] [--seq-len 512] [--batch 64]

A synthetic token store (two memmapped uint16 shards on disk, like the library's) holds the books; the recipe keeps
half of each book, so the stream is ~25M tokens. Prints the index build time and tokens/s of batch assembly for three
mixings, each with its ratio to the baseline measured in the same process: ArrayWindows over one in-memory array
(contiguous, in order — the cheapest possible gather).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bookmix.recipes import ArrayWindows, Recipe, RecipeStream
from bookmix.recipes.books import BookTable
from bookmix.recipes.plan import build_plan


def make_store(root: Path, books: int, book_tokens: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lens = rng.integers(book_tokens // 2, book_tokens * 3 // 2, books)
    shard_of = np.arange(books) % 2
    offsets = np.zeros(books, np.int64)
    arrays = []
    for s in (0, 1):
        mine = np.flatnonzero(shard_of == s)
        offsets[mine] = np.r_[0, np.cumsum(lens[mine] + 1)[:-1]]
        path = root / f"{s:05d}.bin"
        rng.integers(1, 16000, int((lens[mine] + 1).sum()), dtype=np.uint16).tofile(path)
        arrays.append(np.memmap(path, dtype=np.uint16, mode="r"))
    table = BookTable(
        {
            "id": np.array([f"{i:016x}" for i in range(books)], dtype=object),
            "tokens": lens,
            "shard": shard_of,
            "offset": offsets,
            "split": np.full(books, "train", dtype=object),
        }
    )
    return table, arrays


def assemble(source, batch: int) -> float:
    t0 = time.perf_counter()
    for a in range(0, source.n_windows, batch):
        source.windows(a, min(a + batch, source.n_windows))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=int, default=100)
    ap.add_argument("--book-tokens", type=int, default=500_000)
    ap.add_argument("--keep", type=float, default=0.5)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the goal says
    with tempfile.TemporaryDirectory() as tmp:
        table, shards = make_store(Path(tmp), args.books, args.book_tokens)
        ids = table["id"].tolist()
        sparsity = {"keep": args.keep, "chunk_tokens": 4096, "pattern": "random"}
        cases = {
            "interleave (blocks of 16)": {"order": "interleave", "grain": "blocks", "block_windows": 16},
            "shuffled windows": {"order": "random", "grain": "windows"},
            "books in sequence": {"order": "length_asc", "grain": "books"},
        }
        base = None
        for name, extra in cases.items():
            recipe = Recipe.from_dict({"books": ids, "sparsity": sparsity, "seed": 0, **extra})
            t0 = time.perf_counter()
            plan = build_plan(recipe, table, args.seq_len)
            stream = RecipeStream(plan, lambda i: shards[i], 0, np.uint16, recipe=recipe)
            build = time.perf_counter() - t0
            stream.windows(0, 1)  # sequence buffers are assembled on first use: time it apart
            first = time.perf_counter() - t0 - build
            secs = assemble(stream, args.batch)
            if base is None:  # baseline on the same token count, same process
                flat = np.asarray(shards[0][: stream.n_windows * args.seq_len + 1]).copy()
                ref = ArrayWindows(flat, args.seq_len)
                base = ref.n_windows * args.seq_len / assemble(ref, args.batch)
                print(f"baseline ArrayWindows (in-memory, in order): {base / 1e6:,.0f}M tokens/s")
            rate = stream.total_tokens / secs
            print(
                f"{name:28s} {stream.total_tokens / 1e6:6.1f}M tokens  index build {build * 1e3:7.1f} ms"
                f"  first batch {first * 1e3:6.1f} ms  assembly {rate / 1e6:7,.0f}M tokens/s  ({rate / base:.2f}x baseline)"
            )


if __name__ == "__main__":
    main()
