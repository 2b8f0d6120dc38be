"""Topic clusters of books from their token counts: hashing vectorizer → random projection → mini-batch k-means.

    labels = cluster_books(lib, k=32, seed=0)      # also written to the catalog column 'cluster'

Scales to a million books in one pass over the token store with bounded memory: each book contributes at most
``MAX_TOKENS_PER_BOOK`` tokens (an evenly strided sample: unigram counts need no more), books are vectorised a batch
at a time, and only a (n_books, PROJ_DIM) float32 matrix is kept (512 MB for a million books at 128 dims).
Pure numpy, so it runs wherever the library does (scikit-learn is not needed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bookmix.errors import BookmixError

HASH_DIM = 4096
"""Hash buckets for token ids: fewer than a typical vocabulary (8K–32K), so frequent words mostly keep a bucket of
their own while rare ones share; plenty for telling topics apart."""
PROJ_DIM = 128
"""Random-projection width: preserves cosine similarities of the 4096-bucket vectors to a few percent."""
MAX_TOKENS_PER_BOOK = 50_000
BATCH_BOOKS = 1024
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: multiply, keep the high bits
_SHIFT = np.uint64(64 - int(np.log2(HASH_DIM)))


def hashed_counts(books: Sequence[np.ndarray]) -> np.ndarray:
    """(b, HASH_DIM) float32 token counts of each book, hashed into buckets; one bincount for the whole batch."""
    lens = np.array([len(t) for t in books], dtype=np.int64)
    if lens.sum() == 0:
        return np.zeros((len(books), HASH_DIM), dtype=np.float32)
    toks = np.concatenate([np.asarray(t, dtype=np.uint64) for t in books])
    bucket = ((toks * _GOLDEN) >> _SHIFT).astype(np.int64)  # the top log2(HASH_DIM) bits
    row = np.repeat(np.arange(len(books), dtype=np.int64), lens)
    counts = np.bincount(row * HASH_DIM + bucket, minlength=len(books) * HASH_DIM)
    return counts.reshape(len(books), HASH_DIM).astype(np.float32)


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def projection(seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 0xC1057]).standard_normal((HASH_DIM, PROJ_DIM)).astype(np.float32)


def book_features(books: Sequence[np.ndarray], proj: np.ndarray) -> np.ndarray:
    """(b, PROJ_DIM) features: sublinear term frequency (log1p), unit length, projected."""
    return _normalize(np.log1p(hashed_counts(books))) @ proj


def center(features: np.ndarray) -> np.ndarray:
    """Remove the direction every book shares (function words), so clusters follow what books differ in."""
    return _normalize(features - features.mean(axis=0, keepdims=True))


def kmeans(x: np.ndarray, k: int, seed: int, batch: int = 1024, steps: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Mini-batch k-means (Sculley, 2010) with k-means++ seeding. Returns (centroids (k, d), labels (n,) int64).

    Each step assigns a batch to its nearest centroids and moves every centroid to the running mean of all points
    it has received (per-centroid learning rate 1/count), so late batches nudge rather than jump.
    """
    n = len(x)
    if not 1 <= k <= n:
        raise BookmixError(f"k: must be between 1 and the number of books ({n}), got {k}")
    rng = np.random.default_rng([seed, 0x4B4D])
    sample = x[rng.choice(n, size=min(n, max(20 * k, 2048)), replace=False)]
    cent = _kmeanspp(sample, k, rng)
    seen = np.zeros(k, dtype=np.float64)
    for _ in range(steps if n > batch else max(30, steps // 10)):
        xb = x[rng.integers(0, n, size=min(batch, n))] if n > batch else x
        lab = _assign(xb, cent)
        onehot = np.zeros((len(xb), k), dtype=np.float32)
        onehot[np.arange(len(xb)), lab] = 1.0
        got = onehot.sum(axis=0).astype(np.float64)
        sums = onehot.T @ xb  # (k, d)
        hit = got > 0
        seen[hit] += got[hit]
        cent[hit] += ((sums[hit] - got[hit, None] * cent[hit]) / seen[hit, None]).astype(cent.dtype)
    labels = np.concatenate([_assign(x[i : i + 65536], cent) for i in range(0, n, 65536)])
    return cent, labels


def _assign(x: np.ndarray, cent: np.ndarray) -> np.ndarray:
    d = (cent * cent).sum(axis=1)[None, :] - 2.0 * (x @ cent.T)  # |x - c|² minus the constant |x|²
    return d.argmin(axis=1).astype(np.int64)


def _kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    cent = np.empty((k, x.shape[1]), dtype=x.dtype)
    cent[0] = x[rng.integers(len(x))]
    best = ((x - cent[0]) ** 2).sum(axis=1)
    for j in range(1, k):
        total = best.sum()
        i = int(rng.choice(len(x), p=best / total)) if total > 0 else int(rng.integers(len(x)))
        cent[j] = x[i]
        best = np.minimum(best, ((x - cent[j]) ** 2).sum(axis=1))
    return cent


def _sample_tokens(tokens: np.ndarray, limit: int) -> np.ndarray:
    if len(tokens) <= limit:
        return np.asarray(tokens)
    return np.asarray(tokens[np.linspace(0, len(tokens) - 1, limit).astype(np.int64)])


def cluster_books(
    lib: Any,
    k: int,
    seed: int = 0,
    write: bool = True,
    max_tokens: int = MAX_TOKENS_PER_BOOK,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Cluster every book of the library (holdout included, so evaluation can be sliced by topic too).

    Returns {book id: label}; with ``write`` the labels go to the catalog column ``cluster`` (re-running recomputes
    the same labels from the same seed, so an interrupted run simply runs again).
    """
    table = lib.table(["id", "shard", "offset", "tokens"])
    n = len(table["id"])
    if n == 0:
        raise BookmixError(f"{lib.path}: the library has no books to cluster")
    proj = projection(seed)
    feats = np.empty((n, PROJ_DIM), dtype=np.float32)
    shards: dict[int, np.ndarray] = {}
    for a in range(0, n, BATCH_BOOKS):
        batch = []
        for s, o, t in zip(
            table["shard"][a : a + BATCH_BOOKS],
            table["offset"][a : a + BATCH_BOOKS],
            table["tokens"][a : a + BATCH_BOOKS],
            strict=True,
        ):
            arr = shards.get(int(s))
            if arr is None:
                arr = shards[int(s)] = lib.shard(int(s))
            batch.append(_sample_tokens(arr[int(o) : int(o) + int(t)], max_tokens))
        feats[a : a + len(batch)] = book_features(batch, proj)
        if progress is not None:
            progress(a + len(batch), n)
    _, labels = kmeans(center(feats), k, seed)
    ids = table["id"].tolist()
    if write:
        lib.set_column("cluster", ids, labels.tolist())
    return dict(zip(ids, labels.tolist(), strict=True))


# ---- designs that need the labels: cluster on the spot, or name the command ------------------------------------------
AUTO_CLUSTER_MAX_BOOKS = 5000
"""A design that needs cluster labels on a library without them clusters it on the spot up to this many books; above
it, it stops and names `bookmix recipe cluster` (the user picks k and sees the progress). Clustering reads up to 50k
tokens of each book: 3–4.5 ms a book on 40 real books, one core of a shared 2-core machine (`bench/designs.py
--cluster-library LIB`, median of 3), so 5000 books take about 20–30 s."""


def auto_k(n_books: int) -> int:
    """Clusters for a library of ``n_books`` when the user named none: √(n/2) (the usual rule of thumb), 2 to 32."""
    return int(min(32, max(2, round(math.sqrt(n_books / 2)))))


def cluster_command(lib: Any, k: int | None = None) -> str:
    path = getattr(lib, "path", "LIBRARY")
    return f"bookmix recipe cluster --library {path} --k {k or 32}"


def has_clusters(lib: Any) -> bool:
    """Whether any book of the library carries a cluster label (unset labels are -1)."""
    col = lib.table(["cluster"])["cluster"]
    return bool(len(col)) and bool((np.asarray(col) >= 0).any())


def ensure_clusters(lib: Any, why: str, max_books: int | None = None) -> str | None:
    """Cluster ``lib`` if no book has a label yet and it holds at most ``max_books`` books; returns a note saying what
    was done (None when the labels were there). Larger libraries, and in-memory tables, get a BookmixError naming the
    exact command to run. ``why`` says what needs the labels (``by: 'cluster'``, ``order: 'cluster_blocks'``)."""
    if not hasattr(lib, "set_column"):
        raise BookmixError(f"{why}: needs cluster labels, and an in-memory table has none; run the design on the "
                           "library after `bookmix recipe cluster --library DIR`")
    if has_clusters(lib):
        return None
    max_books = AUTO_CLUSTER_MAX_BOOKS if max_books is None else max_books
    n = len(lib.table(["id"])["id"])
    k = min(auto_k(n), n)
    if n > max_books:
        raise BookmixError(f"{why}: the library has no cluster labels yet, and clustering its {n} books takes a while; "
                           f"run `{cluster_command(lib, k)}` first (k = topics; {k} is √(books/2))")
    t0 = time.perf_counter()
    labels = cluster_books(lib, k, seed=0)
    found = len(set(labels.values()))
    return (f"{why}: the library had no cluster labels, so its {n} books were clustered into {found} topics "
            f"({time.perf_counter() - t0:.1f} s, seed 0); `{cluster_command(lib, k)}` chooses another k")
