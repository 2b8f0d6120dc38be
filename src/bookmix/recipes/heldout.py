"""Held-out windows from a library's holdout books: the one sampler behind the held-out loss measured during training,
for `bookmix train`, `bookmix train-pack` and a campaign trial alike (``bookmix.trial``)."""

from __future__ import annotations

import math

import numpy as np

from bookmix.recipes.stream import ArrayWindows


def holdout_windows(lib, seq_len: int, n_windows: int = 64) -> ArrayWindows | None:  # noqa: ANN001
    """About ``n_windows`` windows drawn from up to ``n_windows`` holdout books (evenly spaced by id, so the same
    books every time), each book contributing its opening windows, books separated by the end-of-book token.
    None when the library has no holdout books. Reads only the tokens it uses, not the whole holdout split."""
    books = sorted(lib.books(split="holdout"), key=lambda b: b.id)
    books = [b for b in books if b.tokens > 0]
    if not books:
        return None
    picks = [
        books[i] for i in np.unique(np.linspace(0, len(books) - 1, min(n_windows, len(books))).round().astype(int))
    ]
    per_book = math.ceil(n_windows / len(picks)) * seq_len + 1
    parts: list[np.ndarray] = []
    eob = np.array([lib.eob_id], dtype=np.int64)
    for book in picks:
        parts += [np.asarray(lib.tokens(book.id)[:per_book], dtype=np.int64), eob]
    tokens = np.concatenate(parts)
    windows = ArrayWindows(tokens, seq_len)
    return windows if windows.n_windows > 0 else None
