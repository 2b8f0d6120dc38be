"""Seeded sampling helpers for designs over pools of up to millions of books."""

from __future__ import annotations

import numpy as np


def sample_distinct(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``k`` distinct integers of ``range(n)`` (int64, in draw order), uniformly, in O(k) when k ≪ n.

    ``Generator.choice(n, k, replace=False)`` costs O(n) per call, which for 1000 recipes over a million books is the
    whole budget; drawing with replacement and dropping repeats needs ~k draws when k ≪ n.
    """
    if k > n:
        raise ValueError(f"cannot draw {k} distinct items from {n}")
    if k * 4 > n:
        return rng.permutation(n)[:k].astype(np.int64)
    out = np.zeros(0, dtype=np.int64)
    while len(out) < k:
        draw = np.concatenate([out, rng.integers(0, n, size=k - len(out) + k // 8 + 8)])
        _, first = np.unique(draw, return_index=True)
        out = draw[np.sort(first)][:k]
    return out


class Groups:
    """Rows of a table grouped by a label: one argsort, no loop over rows. Group g is ``order[bounds[g]:bounds[g+1]]``."""

    def __init__(self, labels: np.ndarray) -> None:
        self.labels, inverse = np.unique(labels, return_inverse=True)
        self.order = np.argsort(inverse, kind="stable")
        self.bounds = np.searchsorted(inverse[self.order], np.arange(len(self.labels) + 1))
        self.sizes = np.diff(self.bounds)

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, g: int) -> np.ndarray:
        return self.order[self.bounds[g] : self.bounds[g + 1]]

    def draw(self, rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
        """``counts[g]`` distinct rows from each group g, uniformly. One vectorised draw for all groups; only when it
        repeats a row (rare when groups are large) are the groups drawn one by one without replacement."""
        g = np.repeat(np.arange(len(counts)), counts)
        rows = self.order[self.bounds[g] + (rng.random(len(g)) * self.sizes[g]).astype(np.int64)]
        if len(np.unique(rows)) == len(rows):
            return rows
        parts = [self.rows(i)[sample_distinct(rng, int(self.sizes[i]), int(c))] for i, c in enumerate(counts) if c]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def quota_fill(want: np.ndarray, room: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cap per-group counts ``want`` at ``room`` and hand the excess to groups with room left (by ``weights``)."""
    got = np.minimum(want, room)
    excess = int(want.sum() - got.sum())
    while excess > 0:
        free = room - got
        open_ = free > 0
        if not open_.any():
            raise ValueError("not enough items in the groups")
        w = np.where(open_, weights + 1e-12, 0.0)
        extra = rng.multinomial(excess, w / w.sum())
        add = np.minimum(extra, free)
        got += add
        excess -= int(add.sum())
    return got
