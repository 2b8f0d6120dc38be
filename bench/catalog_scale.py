"""Catalog and token store at a million books: query, sample and read times.

    .venv/bin/python bench/catalog_scale.py [--books 1000000] [--dir /tmp/bookmix-scale]

Generates a library of N synthetic catalog rows (random metadata and features) with a real token store (20-300
random tokens per book, so the store stays a few hundred MB), then times, each as the best of 3 runs:
`list --where` (API and CLI in-process), `Library.sample(1000)`, `Library.table` (first call after a change, which
reads SQLite in bulk, then from the column cache; with a filter), and reads of 100 random books' tokens, with the
CPU time of each beside its wall time. Goals: list --where, sampling and table < 1 s; 100 random reads < 50 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def build(root: Path, n: int, seed: int = 0) -> None:
    from bookmix.library import catalog
    from bookmix.library.store import shard_path
    from bookmix.library.tokenizer import new_bpe, save

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    tok, _ = new_bpe()
    tok.add_special_tokens(["<|endofbook|>"])
    save(tok, root / "tokenizer.json")
    con = catalog.connect(root / catalog.CATALOG_NAME, create=True)
    catalog.set_meta(con, vocab_size=16384, eob_id=0, token_dtype="uint16", holdout=0.05, holdout_seed=0)
    lengths = rng.integers(20, 300, size=n)
    (root / "tokens").mkdir(exist_ok=True)
    with open(shard_path(root, 0), "wb") as fh:
        for lo in range(0, n, 100_000):  # tokens written in blocks, each book followed by the end-of-book id 0
            ln = lengths[lo : lo + 100_000]
            block = rng.integers(1, 16384, size=int(ln.sum() + len(ln)), dtype=np.uint16)
            block[np.cumsum(ln + 1) - 1] = 0
            fh.write(block.tobytes())
    offsets = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    langs = np.array(["en", "ru", "de", "fr"])[rng.integers(0, 4, n)]
    years = rng.integers(1600, 1950, n)
    feats = np.round(rng.random((n, 5)) * [8, 1, 100, 12, 15], 4)  # ingest stores features rounded like this
    con.execute("BEGIN")
    rows = (
        (f"{i:016x}", f"Title {i}", f"Author {i % 5000}", str(langs[i]), int(years[i]), '["Fiction"]', f"gen/{i}.txt",
         f"{i:064x}", int(lengths[i]) * 4, int(lengths[i]), 0, int(offsets[i]), "holdout" if i % 20 == 0 else "train",
         None, *map(float, feats[i]), "{}")
        for i in range(n)
    )
    con.executemany(catalog.INSERT_BOOK, rows)
    con.execute("COMMIT")
    catalog.analyze(con)  # as the end of an ingest does
    con.close()


def best(fn, repeat: int = 3) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs; the CPU time of that run is kept in CPU[0] (the machine may be loaded)."""
    times, out = [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall, CPU[0] = min(times)
    return wall, out


CPU = [0.0]


def cpu() -> str:
    return f"(CPU {CPU[0] * 1000:.0f} ms)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bookmix-scale-"))
    t0 = time.perf_counter()
    if not (root / "catalog.sqlite").exists():
        build(root, args.books)
    print(f"library of {args.books:,} generated books at {root} (built in {time.perf_counter() - t0:.1f} s)")

    from bookmix.cli import main as cli
    from bookmix.library import Library

    lib = Library.open(root)
    where = "lang = 'ru' AND year BETWEEN 1850 AND 1852 AND tokens > 250"
    t, books = best(lambda: lib.books(where=where))
    print(f"books(where={where!r}): {len(books):,} books in {t * 1000:.0f} ms {cpu()}")

    def run_cli():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert cli(["library", "list", "--library", str(root), "--where", where, "--json"]) == 0
        return json.loads(buf.getvalue())["count"]

    t, count = best(run_cli)
    print(f"`bookmix library list --where ... --json` (in-process): {count:,} books in {t * 1000:.0f} ms {cpu()}")
    t, sample = best(lambda: lib.sample(1000, seed=1))
    print(f"sample(1000) of {args.books:,}: {t * 1000:.0f} ms {cpu()}")
    t, sample = best(lambda: lib.sample(1000, seed=2, where="lang = 'en'", split="train"))
    print(f"sample(1000, where lang = 'en', split train): {t * 1000:.0f} ms {cpu()}")
    shutil.rmtree(root / "column_cache", ignore_errors=True)  # the first call after a change reads SQLite in bulk
    cols = ["id", "tokens", "lang", "year", "entropy"]
    t, table = best(lambda: lib.table(cols), repeat=1)
    print(f"table({', '.join(cols)}) of {len(table['id']):,} rows, first call (no cache): {t * 1000:.0f} ms {cpu()}")
    t, table = best(lambda: lib.table(cols))
    print(f"table({', '.join(cols)}) of {len(table['id']):,} rows, cached: {t * 1000:.0f} ms {cpu()}")
    t, table = best(lambda: lib.table(["id", "tokens", "lang"]))
    print(f"table(id, tokens, lang) of {len(table['id']):,} rows: {t * 1000:.0f} ms {cpu()}")
    t, table = best(lambda: lib.table(["id", "tokens"], split="train", where="lang != 'de'"))
    print(f"table(id, tokens, split=train, where lang != 'de'): {len(table['id']):,} rows in {t * 1000:.0f} ms {cpu()}")
    rng = np.random.default_rng(3)
    ids = [f"{i:016x}" for i in rng.choice(args.books, 100, replace=False)]

    def read100():
        return sum(int(np.asarray(lib.tokens(i)).sum()) for i in ids)

    t, _ = best(read100)
    print(f"100 random book reads (tokens copied out of the memmap): {t * 1000:.1f} ms {cpu()}")
    if args.dir is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
