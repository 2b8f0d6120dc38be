"""Book orders: a pure function from the phase's books (and their catalog columns) to a permutation.

Sorting orders break ties by listing order (stable sort) and put books with an unknown value (NaN year or feature)
last in both directions, so "oldest first" and "newest first" both start with dated books.
"""

from __future__ import annotations

import numpy as np

from bookmix.errors import BookmixError

# order name -> (catalog column, descending)
_SORT_KEYS = {
    "length_asc": ("tokens", False),
    "length_desc": ("tokens", True),
    "difficulty_asc": ("difficulty", False),
    "difficulty_desc": ("difficulty", True),
    "year_asc": ("year", False),
    "year_desc": ("year", True),
}


def columns_needed(order: str) -> list[str]:
    if order in _SORT_KEYS:
        return [_SORT_KEYS[order][0]]
    return ["cluster"] if order == "cluster_blocks" else []


def order_books(order: str, columns: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Permutation (int64) of ``n`` books; ``columns`` holds each needed column for those books, in listing order."""
    if order in ("as_listed", "interleave"):
        return np.arange(n, dtype=np.int64)
    if order == "random":
        return rng.permutation(n).astype(np.int64)
    if order in _SORT_KEYS:
        name, desc = _SORT_KEYS[order]
        values = _column(columns, name, order, n).astype(np.float64)
        known = ~np.isnan(values)
        key = np.where(known, -values if desc else values, 0.0)
        # lexsort: last key is primary — unknown values last, then the value, ties by listing position.
        return np.lexsort((np.arange(n), key, ~known)).astype(np.int64)
    if order == "cluster_blocks":
        labels = _column(columns, "cluster", order, n).astype(np.int64)
        # Unclustered books (-1) form one more block; block order and order within a block are drawn at random.
        uniq = np.unique(labels)
        block_rank = np.empty(len(uniq), dtype=np.int64)
        block_rank[rng.permutation(len(uniq))] = np.arange(len(uniq))
        rank_of_book = block_rank[np.searchsorted(uniq, labels)]
        return np.lexsort((rng.permutation(n), rank_of_book)).astype(np.int64)
    raise BookmixError(f"order: unknown {order!r}")  # pragma: no cover - schema forbids it


def _column(columns: dict[str, np.ndarray], name: str, order: str, n: int) -> np.ndarray:
    if name not in columns:
        raise BookmixError(f"order: {order!r} needs the catalog column {name!r}, which the library does not have")
    col = np.asarray(columns[name])
    if len(col) != n:  # pragma: no cover - internal misuse
        raise ValueError(f"column {name!r} has {len(col)} values for {n} books")
    if name == "cluster" and (col < 0).all():
        raise BookmixError("order: 'cluster_blocks' needs cluster labels; run `bookmix recipe cluster --library DIR` first")
    return col
