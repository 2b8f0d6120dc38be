"""Sparsity: which chunks of a book are kept. A pure function of the chunk count, the settings and a generator.

Kept chunks always come back sorted (book order), so a thinned book still reads front to back.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from bookmix.recipes.recipe import Sparsity


def n_kept(n_chunks: int, keep: float) -> int:
    """Chunks kept out of ``n_chunks``: keep·n rounded half up, at least one (a listed book is never dropped)."""
    if n_chunks <= 0:
        return 0
    return int(min(n_chunks, max(1, int(keep * n_chunks + 0.5))))


def kept_chunks(n_chunks: int, sparsity: Sparsity, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted, int64) of the chunks kept from a book of ``n_chunks`` chunks."""
    k = n_kept(n_chunks, sparsity.keep)
    if k == n_chunks:
        return np.arange(n_chunks, dtype=np.int64)
    if sparsity.pattern == "prefix":
        return np.arange(k, dtype=np.int64)
    if sparsity.pattern == "stride":
        # Evenly spaced: chunk floor(i * n / k) for i < k — every n/k-th chunk, also when n/k is not whole.
        return (np.arange(k, dtype=np.int64) * n_chunks) // k
    if sparsity.pattern == "random":
        return np.sort(rng.choice(n_chunks, size=k, replace=False)).astype(np.int64)
    if sparsity.pattern == "contiguous_random":
        start = int(rng.integers(0, n_chunks - k + 1))
        return np.arange(start, start + k, dtype=np.int64)
    raise ValueError(f"sparsity.pattern: unknown {sparsity.pattern!r}")  # pragma: no cover - schema forbids it


def book_rng(seed: int, book_id: str) -> np.random.Generator:
    """A generator per (recipe seed, book): a book is thinned the same way whatever else is in the set."""
    digest = int.from_bytes(hashlib.sha256(book_id.encode()).digest()[:8], "little")
    return np.random.default_rng([seed, 0x5EA5E, digest])
