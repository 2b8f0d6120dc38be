"""The catalog columns the recipes room reads, as plain numpy arrays, and the checks on book ids.

Everything downstream (orders, plans, designs) works on a :class:`BookTable`, never on the Library itself, so the
cores are pure and testable on arrays; this file is the one edge that asks the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bookmix.errors import BookmixError

# What a stream needs (location, length, split) plus what orders may sort by.
STREAM_COLUMNS = ("id", "tokens", "shard", "offset", "split", "year", "difficulty", "cluster")
DUP_COLUMN = "dup_of"  # the canonical book's id on a near-duplicate (library/dedup.py), NULL elsewhere
DUPLICATE = "duplicate"  # the table's boolean: marked by dedup
_IN_CHUNK = 5000  # ids per "id IN (...)" query: well under SQLite's statement-length limit


@dataclass(frozen=True)
class BookTable:
    """Catalog columns for some books: ``columns[name][i]`` belongs to book ``columns['id'][i]``."""

    columns: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        if "id" not in self.columns:
            raise BookmixError("catalog table: needs an 'id' column")
        n = len(self.columns["id"])
        for name, col in self.columns.items():
            if len(col) != n:
                raise BookmixError(f"catalog table: column {name!r} has {len(col)} rows, 'id' has {n}")

    def __len__(self) -> int:
        return len(self.columns["id"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def rows(self, book_ids: Sequence[str], field: str = "books") -> np.ndarray:
        """Row of each id (int64), checking that every book exists and is in the train split."""
        ids = self.columns["id"]
        position = {str(b): i for i, b in enumerate(ids)} if len(ids) < 4 * len(book_ids) + 1000 else None
        if position is not None:
            out = np.empty(len(book_ids), dtype=np.int64)
            for j, b in enumerate(book_ids):
                if b not in position:
                    raise BookmixError(f"{field}: book {b!r} is not in the library")
                out[j] = position[b]
        else:  # a big table: one vectorised lookup instead of a dict of a million ids
            ids_u = ids.astype(str)
            order = np.argsort(ids_u, kind="stable")
            want = np.asarray(book_ids, dtype=str)
            at = np.searchsorted(ids_u[order], want)
            at = np.minimum(at, len(order) - 1)
            found = ids_u[order][at] == want
            if not found.all():
                raise BookmixError(f"{field}: book {str(want[~found][0])!r} is not in the library")
            out = order[at].astype(np.int64)
        if "split" in self.columns:
            split = self.columns["split"][out]
            bad = np.flatnonzero(split == "holdout")
            if len(bad):
                raise BookmixError(f"{field}: book {book_ids[bad[0]]!r} is a holdout book (reserved for evaluation)")
        return out

    def take(self, rows: np.ndarray) -> BookTable:
        return BookTable({k: v[rows] for k, v in self.columns.items()})


def as_table(lib_or_table: Any, columns: Sequence[str] | None = None, where: str | None = None) -> BookTable:
    """Catalog columns of a Library (optionally filtered by a SQL ``where``) or of an in-memory column dict.

    A boolean ``duplicate`` column comes along whenever the library has been deduplicated (see
    :func:`without_duplicates`). Holdout books stay in (with their ``split``) so that checks can name a holdout book as such; designs draw from
    :func:`train_pool` of it.
    """
    if isinstance(lib_or_table, BookTable):
        table = lib_or_table
    elif isinstance(lib_or_table, dict):
        table = BookTable({k: np.asarray(v) for k, v in lib_or_table.items()})
    else:
        have = set(lib_or_table.columns())
        missing = [c for c in (columns or ()) if c not in have]
        if missing:
            raise BookmixError(f"catalog column {missing[0]!r}: not in the library {lib_or_table.path}")
        cols = list(dict.fromkeys(["id", "tokens", "split", *(columns or ())]))
        data = lib_or_table.table(cols, where=where)
        if DUP_COLUMN in have:  # few books are marked: list their ids (SQLite scans) rather than read the whole column
            marked = lib_or_table.table(["id"], where=f"{DUP_COLUMN} IS NOT NULL")["id"]
            data[DUPLICATE] = np.isin(data["id"].astype(str), marked.astype(str))
        table = BookTable(data)
        # Catalog rows come in ingest order, which depends on which worker finished first: order by the content-hash
        # id so that a design's draws depend only on the books and the seed.
        return table.take(np.argsort(table["id"], kind="stable"))
    if where is not None:
        raise BookmixError("where: a catalog expression needs a Library, not an in-memory table")
    return table


def train_pool(table: BookTable) -> BookTable:
    """The books a recipe may use: everything but the holdout."""
    if "split" not in table:
        return table
    return table.take(np.flatnonzero(table["split"] != "holdout"))


def without_duplicates(table: BookTable) -> BookTable:
    """The books no dedup marked as a near-duplicate of another: the default pool of designs. Reads the boolean
    ``duplicate`` column of a library's table, or an in-memory table's ``dup_of`` (a canonical id, None or '')."""
    if DUPLICATE in table:
        marked = np.asarray(table[DUPLICATE], dtype=bool)
    elif DUP_COLUMN in table:
        marked = np.array(
            [v is not None and v == v and v != "" for v in table[DUP_COLUMN]], dtype=bool
        )  # v == v: not NaN
    else:
        return table
    return table.take(np.flatnonzero(~marked))


def books_table(lib: Any, book_ids: Sequence[str], field: str = "books") -> BookTable:
    """Stream columns of exactly ``book_ids`` (in that order), read from the library without loading the whole catalog."""
    have = set(lib.columns())
    cols = [c for c in STREAM_COLUMNS if c in have]
    wanted = list(dict.fromkeys(book_ids))
    parts: list[dict[str, np.ndarray]] = []
    for i in range(0, len(wanted), _IN_CHUNK):
        quoted = ",".join("'" + b.replace("'", "''") + "'" for b in wanted[i : i + _IN_CHUNK])
        parts.append(lib.table(cols, where=f"id IN ({quoted})"))
    merged = BookTable({c: np.concatenate([p[c] for p in parts]) for c in cols})
    return merged.take(merged.rows(list(book_ids), field))
