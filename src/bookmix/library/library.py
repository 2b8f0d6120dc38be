"""Library: the read side of an ingested library (catalog + token store + tokenizer), the API every later stage uses.

    lib = Library.open("lib/")
    for book in lib.books(where="lang = 'ru'", split="train"):
        ids = lib.tokens(book.id)          # read-only memmap view, no end-of-book token

Opening is cheap: the catalog connection, shard memmaps and the tokenizer are all made on first use.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from bookmix.errors import BookmixError
from bookmix.library import catalog
from bookmix.library.book import Book
from bookmix.library.columns import read_table
from bookmix.library.store import ShardReader, token_dtype
from bookmix.library.tokenizer import EOB_TOKEN, TOKENIZER_NAME
from bookmix.library.tokenizer import load as load_tokenizer


class Library:
    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta
        self.vocab_size: int = int(meta["vocab_size"])
        self.eob_id: int = int(meta["eob_id"])
        self.dtype = token_dtype(self.vocab_size)
        self._reader = ShardReader(path, self.dtype)
        self._con: sqlite3.Connection | None = None
        self._pid = -1

    @classmethod
    def open(cls, path: str | os.PathLike) -> Library:
        path = Path(path)
        if not path.is_dir():
            raise BookmixError(f"{path}: no such library folder")
        if not (path / catalog.CATALOG_NAME).exists():
            raise BookmixError(f"{path}: not a bookmix library (no {catalog.CATALOG_NAME}; run `bookmix library ingest`)")
        con = catalog.connect(path / catalog.CATALOG_NAME)
        try:
            meta = catalog.get_meta(con)
        except sqlite3.Error as exc:
            raise BookmixError(f"{path / catalog.CATALOG_NAME}: not a bookmix catalog ({exc})") from exc
        finally:
            con.close()
        if "vocab_size" not in meta or "eob_id" not in meta:
            raise BookmixError(f"{path}: library is incomplete (no tokenizer recorded yet; re-run the ingest)")
        return cls(path, meta)

    # -- connection (one per process: SQLite handles must not cross a fork) --------------------------------------
    @property
    def con(self) -> sqlite3.Connection:
        if self._con is None or self._pid != os.getpid():
            self._con = catalog.connect(self.path / catalog.CATALOG_NAME)
            self._pid = os.getpid()
        return self._con

    def close(self) -> None:
        if self._con is not None and self._pid == os.getpid():
            self._con.close()
        self._con = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Library({str(self.path)!r}, vocab_size={self.vocab_size})"

    # -- tokenizer ----------------------------------------------------------------------------------------------
    @cached_property
    def tokenizer(self):  # -> tokenizers.Tokenizer
        tok = load_tokenizer(self.path / TOKENIZER_NAME)
        if tok.token_to_id(EOB_TOKEN) != self.eob_id:
            raise BookmixError(f"{self.path / TOKENIZER_NAME}: end-of-book id differs from the catalog's")
        return tok

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Batched encoding (Rust, parallel); one array of the store's dtype per text, no end-of-book token."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts; wrap a single string in a list")
        encs = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=self.dtype) for e in encs]

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        return self.tokenizer.decode(np.asarray(ids, dtype=np.int64).tolist(), skip_special_tokens=False)

    # -- catalog ------------------------------------------------------------------------------------------------
    def columns(self) -> list[str]:
        return catalog.columns(self.con)

    def books(self, where: str | None = None, split: str | None = None, limit: int | None = None) -> list[Book]:
        """Books matching a SQL expression over the catalog columns and/or a split, in catalog (ingest) order."""
        clause, args = catalog.filter_sql(where, split)
        sql = f"SELECT * FROM books{clause} ORDER BY rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cur_names = self._names()
        return [catalog.row_to_book(cur_names, r) for r in catalog.query(self.con, sql, args, where)]

    def book(self, book_id: str) -> Book:
        rows = catalog.query(self.con, "SELECT * FROM books WHERE id = ?", (str(book_id),))
        if not rows:
            raise BookmixError(f"book {book_id!r}: not in the library {self.path}")
        return catalog.row_to_book(self._names(), rows[0])

    def count(self, where: str | None = None, split: str | None = None) -> int:
        clause, args = catalog.filter_sql(where, split)
        return int(catalog.query(self.con, f"SELECT COUNT(*) FROM books{clause}", args, where)[0][0])

    def sample(self, n: int, seed: int = 0, where: str | None = None, split: str | None = None) -> list[Book]:
        """``n`` distinct books drawn uniformly (seeded) among those matching, in catalog order; fast on a million rows.

        Walks a seeded permutation of row ids in blocks and keeps the rows that match, instead of listing every
        matching row (or ``ORDER BY random()``); a very selective filter falls back to listing the matching ids.
        """
        clause, args = catalog.filter_sql(where, split)
        top = catalog.query(self.con, "SELECT MAX(rowid) FROM books")[0][0] or 0
        rng = np.random.default_rng(seed)
        names = self._names()
        rows: list[tuple] = []
        perm = rng.permutation(np.arange(1, top + 1))
        block = max(2 * n, 256)
        for lo in range(0, len(perm), block):
            chunk = np.sort(perm[lo : lo + block])
            for part in np.array_split(chunk, max(1, len(chunk) // 900)):  # SQLite's bound-parameter limit
                marks = ",".join("?" * len(part))
                extra = f" AND {clause[7:]}" if clause else ""
                sql = f"SELECT * FROM books WHERE rowid IN ({marks}){extra}"
                rows += catalog.query(self.con, sql, [*part.tolist(), *args], where)
            if len(rows) >= n:
                break
            if lo == 0 and len(rows) * 10 < len(chunk):  # under 10% match: list the matching ids instead
                return self._sample_listed(n, rng, clause, args, where, names)
        if len(rows) < n:
            raise BookmixError(f"sample: asked for {n} books, only {len(rows)} match")
        rank = {int(r): i for i, r in enumerate(perm[: lo + block])}
        keep = sorted(rows, key=lambda r: rank[r[0]])[:n]  # the first n met along the permutation
        return [catalog.row_to_book(names, r) for r in sorted(keep, key=lambda r: r[0])]

    def _sample_listed(self, n, rng, clause, args, where, names) -> list[Book]:
        rowids = np.array([r[0] for r in catalog.query(self.con, f"SELECT rowid FROM books{clause}", args, where)])
        if n > len(rowids):
            raise BookmixError(f"sample: asked for {n} books, only {len(rowids)} match")
        pick = np.sort(rng.choice(rowids, size=n, replace=False))
        out: list[Book] = []
        for part in np.array_split(pick, max(1, len(pick) // 900)):
            marks = ",".join("?" * len(part))
            rows = catalog.query(self.con, f"SELECT * FROM books WHERE rowid IN ({marks})", part.tolist())
            out += [catalog.row_to_book(names, r) for r in rows]
        return out

    def table(
        self, columns: Sequence[str] | None = None, where: str | None = None, split: str | None = None
    ) -> dict[str, np.ndarray]:
        """The catalog as columns of numpy arrays, for designs over a million books (see columns.py: bulk reads
        cached per catalog generation).

        Integer columns are int64, features and ``year`` float64 (NaN when unknown), ``cluster`` int64 (-1 when
        unset), text columns object arrays.
        """
        have = self.columns()
        cols = list(columns) if columns is not None else have
        unknown = [c for c in cols if c not in have]
        if unknown:
            raise BookmixError(f"columns {unknown}: not in the catalog (have: {', '.join(have)})")
        return read_table(self.con, self.path, cols, where, split)

    def set_column(self, name: str, book_ids: Sequence[str], values: Sequence[Any]) -> int:
        """Write a per-book column (e.g. ``cluster`` labels); adds the column when new. Returns rows updated."""
        return catalog.set_column(self.con, name, book_ids, values)

    def stats(self) -> dict[str, Any]:
        from bookmix.library.stats import library_stats

        return library_stats(self)

    # -- token store --------------------------------------------------------------------------------------------
    def tokens(self, book_id: str) -> np.ndarray:
        """The book's tokens: a read-only 1-D memmap slice of its shard (no end-of-book token)."""
        rows = catalog.query(self.con, "SELECT shard, offset, tokens FROM books WHERE id = ?", (str(book_id),))
        if not rows:
            raise BookmixError(f"book {book_id!r}: not in the library {self.path}")
        shard, offset, n = rows[0]
        return self._reader.read(shard, offset, n)

    def shard(self, i: int) -> np.ndarray:
        """A whole flat shard (memmap): books back to back, each followed by the end-of-book id."""
        try:
            return self._reader.shard(int(i))
        except FileNotFoundError:
            raise BookmixError(f"shard {i}: not in the library {self.path}") from None

    def n_shards(self) -> int:
        row = catalog.query(self.con, "SELECT MAX(shard) FROM books")[0][0]
        return 0 if row is None else int(row) + 1

    def _names(self) -> list[str]:
        return ["rowid", *self.columns()]
