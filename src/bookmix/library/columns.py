"""Columnar reads of the catalog (``Library.table``): a million books' columns in a fraction of a second.

A column is read from SQLite in bulk once per catalog generation (one ``group_concat`` string per column from one
scan, parsed in C by numpy or ``str.split``; reals as scaled integers, exact for the rounded features) and kept as a file in ``LIBRARY/column_cache/g<changes>-r<highest rowid>/``: ``NAME.npy`` for numbers,
``NAME.txt`` (UTF-8, values joined by U+001F) for text, or ``NAME.codes.npy`` + ``NAME.cats.txt`` for text with few
distinct values. Later calls load the files. The ingest fills the cache at its end (:func:`warm`).

Staleness: triggers on ``books`` count updates and deletes (catalog.py) and appended books raise the highest rowid;
both name the cache folder, so a changed catalog is never served from an old cache, and the folder of an older
generation is removed when a newer one is written. ``cluster`` has its own counter and file name, so relabelling
books keeps every other column's file. The stamp and the data are read in one read transaction (one WAL snapshot):
a cache never holds rows newer or older than its name says. A filter (``where``/``split``) is answered by SQLite as
a list of rowids; a selective one (few rows) just reads its rows directly. Columns added by ``set_column`` are
read from SQLite each time (object arrays, values as stored).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bookmix.library import catalog
from bookmix.library.book import FEATURES
from bookmix.utils.io import atomic_open, atomic_write_bytes

CACHE_DIR = "column_cache"
# Below this many selected rows, reading the rows straight from SQLite beats loading whole cached columns.
DIRECT_ROWS = 50_000
_SEP = "\x1f"  # ASCII unit separator: never in a title or an id; a value that holds one falls back to a row read

# How each core column is typed in the table (the contract in docs/internals.md). Nullable integers: year becomes
# float64 with NaN, cluster int64 with -1 (labels are ≥ 0). Columns added later (set_column) stay object arrays.
INT_COLUMNS = frozenset({"rowid", "chars", "tokens", "shard", "offset"})
FLOAT_COLUMNS = frozenset({"year", *FEATURES})
TEXT_COLUMNS = frozenset({"id", "title", "author", "lang", "subjects", "source", "sha256", "split", "extra"})
# Text columns with few distinct values are cached as codes into a list: rebuilding them is one numpy gather.
CATEGORICAL = frozenset({"author", "lang", "subjects", "split", "extra"})


def convert(name: str, values: Sequence) -> np.ndarray:
    """Python values of one column (as SQLite returned them) → the column's typed array."""
    if name in INT_COLUMNS:
        return np.array(values, dtype=np.int64).reshape(-1)
    if name in FLOAT_COLUMNS:
        return np.array(values, dtype=np.float64).reshape(-1)  # None → NaN
    if name == "cluster":
        return np.array([-1 if v is None else v for v in values], dtype=np.int64).reshape(-1)
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


# What the ingest caches at its end: the columns designs, recipes and the analysis read (source, sha256 and extra
# are left to the first call that asks).
WARM_COLUMNS = ("id", "title", "author", "lang", "year", "subjects", "chars", "tokens", "shard", "offset", "split", "cluster", *FEATURES)


def warm(con: sqlite3.Connection, root: Path) -> None:
    """Fill the column cache after a change (a few seconds at a million books, once, instead of in the first design)."""
    read_table(con, root, WARM_COLUMNS, None, None)


def read_table(con: sqlite3.Connection, root: Path, cols: Sequence[str], where: str | None, split: str | None) -> dict[str, np.ndarray]:
    """The columns ``cols`` of the rows matching ``where``/``split``, in rowid (ingest) order."""
    clause, args = catalog.filter_sql(where, split)
    catalog.ensure_generation(con)
    own_txn = not con.in_transaction
    if own_txn:
        con.execute("BEGIN")  # one snapshot for the stamp, the rowids and the columns
    try:
        rows = None
        if clause:
            rows = _ints(con, "rowid", clause, args, where)
            if len(rows) <= DIRECT_ROWS:
                return _direct(con, cols, clause, args, where)
        want = list(dict.fromkeys([*cols, "rowid"] if rows is not None else cols))
        cache = _Cache(root / CACHE_DIR, catalog.generation(con))
        out = {c: cache.load(c) for c in want}
        missing = [c for c in want if out[c] is None]
        if missing:
            out.update(_bulk(con, missing))
            for c in missing:
                cache.save(c, out[c])
        if rows is not None:
            take = np.searchsorted(out["rowid"], rows)
            return {c: out[c][take] for c in cols}
        return {c: out[c] for c in cols}
    finally:
        if own_txn:
            con.execute("COMMIT")


def _direct(con, cols: Sequence[str], clause: str, args, where) -> dict[str, np.ndarray]:
    quoted = ", ".join(f'"{c}"' for c in cols)
    rows = catalog.query(con, f"SELECT {quoted} FROM books{clause} ORDER BY rowid", args, where)
    return {c: convert(c, [r[j] for r in rows]) for j, c in enumerate(cols)}


# Reals travel from SQLite as integers k = round(x * 10^4) and come back as k / 10^4: for a value rounded to 4
# decimals (every feature) that division gives back the very same double (both are the nearest double to the
# decimal); SQLite checks that in the same scan, and a column holding any other value is fetched as it is.
_REAL_SCALE = 10_000


def _bulk(con, cols: Sequence[str]) -> dict[str, np.ndarray]:
    """Whole columns in rowid order from ONE scan of the table: each column one ``group_concat`` string, parsed in C
    (numbers by numpy, text by ``str.split``). Columns of other types (added by set_column), and any whose text does
    not give back one exact value per row, are fetched as they are.
    """
    exprs, at, checks = ["COUNT(*)"], {}, {}
    for c in cols:
        q = f'"{c}"'
        if c in INT_COLUMNS or c == "cluster":
            at[c] = len(exprs)
            exprs.append(f"group_concat({q if c != 'cluster' else 'ifnull(cluster, -1)'}, ' ')")
        elif c == "year":  # a nullable INTEGER: its text is exact (a stray REAL in it sends it to the plain fetch)
            at[c], checks[c] = len(exprs), len(exprs) + 1
            exprs.append(f"group_concat(ifnull({q}, 'nan'), ' ')")
            exprs.append(f"SUM(typeof({q}) = 'real')")
        elif c in FLOAT_COLUMNS:
            k = f"CAST(round({q} * {_REAL_SCALE}) AS INTEGER)"
            at[c], checks[c] = len(exprs), len(exprs) + 1
            exprs.append(f"group_concat(ifnull({k}, 'nan'), ' ')")
            exprs.append(f"SUM({q} IS NOT NULL AND {q} <> {k} / {_REAL_SCALE}.0)")
        elif c in TEXT_COLUMNS:
            at[c] = len(exprs)
            exprs.append(f"group_concat({q}, char(31))")
    inner = ", ".join(dict.fromkeys(["rowid", *(f'"{c}"' for c in at)]))
    got = con.execute(f"SELECT {', '.join(exprs)} FROM (SELECT {inner} FROM books ORDER BY rowid)").fetchone()
    n, out = got[0], {}
    for c, j in at.items():
        s = got[j]
        if c in TEXT_COLUMNS:
            out[c] = convert(c, [] if s is None else s.split(_SEP))
        elif c in checks:
            if not got[checks[c]]:
                values = np.fromstring(s, dtype=np.float64, sep=" ") if s else np.zeros(0)
                out[c] = values if c == "year" else values / _REAL_SCALE
        else:
            out[c] = np.fromstring(s, dtype=np.int64, sep=" ") if s else np.zeros(0, np.int64)
    for c in cols:
        if c not in out or len(out[c]) != n:
            out[c] = convert(c, [r[0] for r in con.execute(f'SELECT "{c}" FROM books ORDER BY rowid')])
    return out


def _ints(con, expr: str, clause: str, args, where) -> np.ndarray:
    """An integer expression over the matching rows, in rowid order, as one string parsed by numpy."""
    sql = f"SELECT group_concat(x, ' ') FROM (SELECT {expr} AS x FROM books{clause} ORDER BY rowid)"
    s = catalog.query(con, sql, args, where)[0][0]
    return np.fromstring(s, dtype=np.int64, sep=" ") if s else np.zeros(0, np.int64)


class _Cache:
    """Column files of one catalog stamp; columns of other types (added by set_column) are not cached."""

    def __init__(self, base: Path, stamps: dict[str, str] | None) -> None:
        self.base = base
        self.dir = None if stamps is None else base / stamps["books"]
        # cluster labels have their own counter: relabelling keeps the other columns' files
        self.cluster = None if stamps is None else f"cluster.{stamps['cluster'].rsplit('-', 1)[1]}"

    def _file(self, col: str) -> str:
        return self.cluster if col == "cluster" else col

    def load(self, col: str) -> np.ndarray | None:
        d = self.dir
        if d is None or not _cached(col):
            return None
        try:
            if col not in TEXT_COLUMNS:
                return np.load(d / f"{self._file(col)}.npy", allow_pickle=False)
            if (d / f"{col}.codes.npy").exists():  # few distinct values (lang, split, author): codes into a list
                cats = convert(col, (d / f"{col}.cats.txt").read_bytes().decode("utf-8").split(_SEP))
                return cats[np.load(d / f"{col}.codes.npy", allow_pickle=False)]
            return convert(col, (d / f"{col}.txt").read_bytes().decode("utf-8").split(_SEP))
        except (OSError, ValueError, IndexError):  # absent, removed by a newer generation, or torn by a crash
            return None

    def save(self, col: str, arr: np.ndarray) -> None:
        if self.dir is None or not _cached(col) or len(arr) == 0:
            return  # an empty catalog is instant anyway (and "" would read back as one empty value)
        try:
            fresh = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
            if col in TEXT_COLUMNS:
                self._save_text(col, arr.tolist())
            else:
                _save_npy(self.dir / f"{self._file(col)}.npy", arr)
            if col == "cluster":
                for old in self.dir.glob("cluster.*.npy"):
                    if old.stem != self.cluster:
                        old.unlink(missing_ok=True)
            if fresh:
                for old in self.base.iterdir():
                    if old.is_dir() and old != self.dir:
                        shutil.rmtree(old, ignore_errors=True)
        except OSError:  # a read-only library still answers, it just is not cached
            with contextlib.suppress(OSError):
                if self.dir.exists() and not any(self.dir.iterdir()):
                    self.dir.rmdir()

    def _save_text(self, col: str, values: list[str]) -> None:
        distinct = set(values) if col in CATEGORICAL else ()
        if 0 < len(distinct) * 4 <= len(values):
            cats = sorted(distinct)
            joined = _SEP.join(cats)
            if joined.count(_SEP) != len(cats) - 1:
                return  # a value holds the separator and would not split back: read from SQLite each time
            index = {v: i for i, v in enumerate(cats)}
            codes = np.array(list(map(index.__getitem__, values)), dtype=np.int32)
            atomic_write_bytes(self.dir / f"{col}.cats.txt", joined.encode("utf-8"))
            _save_npy(self.dir / f"{col}.codes.npy", codes)  # written last: its presence says the pair is whole
            return
        joined = _SEP.join(values)
        if joined.count(_SEP) == len(values) - 1:
            atomic_write_bytes(self.dir / f"{col}.txt", joined.encode("utf-8"))


def _cached(col: str) -> bool:
    return col in INT_COLUMNS or col in FLOAT_COLUMNS or col in TEXT_COLUMNS or col == "cluster"


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
