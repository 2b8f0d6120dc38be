"""A word n-gram language model (interpolated Witten-Bell), all in numpy: the cheap stand-in for a trained model.

It answers the one question the learnability check asks of a model — log p(continuation | context) — through the
same interface a nano-model scorer will (:class:`ContinuationScorer`), so the check runs unchanged on either.

Counting: words → ids (np.unique), every k-gram → one int64 key (base-V digits), counts by np.unique; lookups by
np.searchsorted over the sorted keys, for all queries at once. No Python loop per word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WORD = re.compile(r"\w+|[^\w\s]")
UNK, BOUNDARY = 0, 1  # unseen words; the gap between two documents (so no n-gram spans two books)


@runtime_checkable
class ContinuationScorer(Protocol):
    def logprobs(self, contexts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        """log p(continuation | context) for each pair, shape (n,), float64."""
        ...


@dataclass
class _Table:
    keys: np.ndarray  # sorted unique k-gram keys, int64
    counts: np.ndarray  # their counts
    ctx_keys: np.ndarray  # sorted unique (k-1)-gram contexts that have a continuation
    ctx_total: np.ndarray  # c(h): tokens following h
    ctx_types: np.ndarray  # T(h): distinct words following h (Witten-Bell's weight for backing off)


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[key == query] where present, else 0 (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(len(query), dtype=values.dtype)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0)


class NGramScorer:
    """Word n-gram LM of ``order``. The default 5 sees four words back: enough for the longest fact cue,
    "<name> works as a", to condition on the name."""

    def __init__(self, texts: Sequence[str], order: int = 5) -> None:
        if order < 1:
            raise ValueError(f"order must be ≥ 1, got {order}")
        self.order = order
        docs = [WORD.findall(t) for t in texts]
        # Word ids through a dict and C-level map (the vocabulary is tiny; sorting a million strings is not).
        self.vocab = {w: i + 2 for i, w in enumerate(sorted(set().union(*docs)))}
        self.base = len(self.vocab) + 2
        if self.base**order >= 2**62:
            raise ValueError(f"vocabulary of {self.base} words is too large for {order}-gram int64 keys")
        # One stream: doc words, a boundary, doc words, ... (ids shifted past UNK and BOUNDARY).
        lengths = [len(d) for d in docs]
        ids = np.full(sum(lengths) + len(docs), BOUNDARY, dtype=np.int64)
        ends = np.cumsum(np.array(lengths) + 1)  # each document is followed by one BOUNDARY
        for d, end in zip(docs, ends, strict=True):
            ids[end - 1 - len(d) : end - 1] = np.fromiter(map(self.vocab.__getitem__, d), dtype=np.int64, count=len(d))
        self.n_tokens = sum(lengths)
        self.unigram = np.bincount(ids[ids >= 2], minlength=self.base).astype(np.float64)
        self.tables: list[_Table] = []
        for k in range(2, order + 1):
            if len(ids) < k:
                self.tables.append(_Table(*(np.zeros(0, np.int64) for _ in range(5))))
                continue
            grams = sliding_window_view(ids, k)  # (n-k+1, k)
            grams = grams[(grams != BOUNDARY).all(axis=1)]
            keys, counts = np.unique(self._keys(grams), return_counts=True)
            ctx, inverse = np.unique(keys // self.base, return_inverse=True)
            total = np.bincount(inverse, weights=counts).astype(np.int64)
            types = np.bincount(inverse).astype(np.int64)
            self.tables.append(_Table(keys, counts.astype(np.int64), ctx, total, types))

    def _keys(self, grams: np.ndarray) -> np.ndarray:
        """(n, k) ids → (n,) int64 keys, the ids as base-V digits."""
        k = grams.shape[1]
        powers = self.base ** np.arange(k - 1, -1, -1, dtype=np.int64)
        return grams @ powers

    def encode(self, text: str) -> list[int]:
        return [self.vocab.get(w, UNK) for w in WORD.findall(text)]

    def word_logprobs(self, histories: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """log p(target | last order-1 words of history) for each row; histories (n, order-1) padded with BOUNDARY."""
        # Unigram: add-one, so unseen words get a small, finite probability.
        p = (self.unigram[targets] + 1.0) / (self.n_tokens + self.base)
        for k, table in zip(range(2, self.order + 1), self.tables, strict=True):
            h = histories[:, self.order - k :]  # (n, k-1): the k-1 most recent words
            valid = (h != BOUNDARY).all(axis=1) & (h != UNK).all(axis=1)
            hk = self._keys(h)
            c_h = _lookup(table.ctx_keys, table.ctx_total, hk)
            t_h = _lookup(table.ctx_keys, table.ctx_types, hk)
            c_hw = _lookup(table.keys, table.counts, hk * self.base + targets)
            seen = valid & (c_h > 0)
            p = np.where(seen, (c_hw + t_h * p) / np.maximum(c_h + t_h, 1), p)
        return np.log(p)

    def logprobs(self, contexts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        rows: list[list[int]] = []
        targets: list[int] = []
        owner: list[int] = []
        pad = [BOUNDARY] * (self.order - 1)
        for i, (ctx, cont) in enumerate(zip(contexts, continuations, strict=True)):
            seq = pad + self.encode(ctx)
            for w in self.encode(cont):
                rows.append(seq[len(seq) - (self.order - 1) :] if self.order > 1 else [])
                targets.append(w)
                owner.append(i)
                seq = seq + [w]
        out = np.zeros(len(contexts))
        if targets:
            lp = self.word_logprobs(
                np.array(rows, dtype=np.int64).reshape(len(targets), self.order - 1), np.array(targets, dtype=np.int64)
            )
            np.add.at(out, np.array(owner), lp)
        return out
