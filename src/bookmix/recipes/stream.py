"""Token streams the trainer reads: a fixed, fully known sequence of (T+1)-token windows.

The trainer never sees books, only a :class:`WindowSource`: ``n_windows`` windows of ``seq_len + 1`` tokens in a
fixed order (all epochs included), fetched by index range. Random access by index makes resume exact (a checkpoint
stores the next window index) and makes the token count known before training starts.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class WindowSource(Protocol):
    seq_len: int
    """T: tokens predicted per window. A window holds T+1 tokens (inputs are [:-1], targets [1:])."""
    n_windows: int
    """Windows in the whole stream, every epoch included."""

    def windows(self, start: int, stop: int) -> np.ndarray:
        """Windows ``start .. stop-1`` in stream order, shape (stop-start, T+1), an integer dtype."""
        ...


class ArrayWindows:
    """Windows cut from one in-memory token array, in order, optionally repeated for several epochs.

    The simplest WindowSource: for tests, for benchmarks, and for held-out text.
    """

    def __init__(self, tokens: np.ndarray, seq_len: int, epochs: int = 1, stride: int | None = None) -> None:
        tokens = np.asarray(tokens)
        if tokens.ndim != 1:
            raise ValueError(f"tokens must be 1-D, got shape {tokens.shape}")
        self.tokens = tokens
        self.seq_len = int(seq_len)
        self.stride = int(stride or seq_len)
        per_epoch = max(0, (len(tokens) - self.seq_len - 1) // self.stride + 1) if len(tokens) > self.seq_len else 0
        self.windows_per_epoch = per_epoch
        self.n_windows = per_epoch * int(epochs)
        self._offsets = np.arange(self.seq_len + 1)

    @property
    def total_tokens(self) -> int:
        return self.n_windows * self.seq_len

    def windows(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= self.n_windows:
            raise IndexError(f"window range {start}:{stop} outside 0:{self.n_windows}")
        idx = np.arange(start, stop) % max(self.windows_per_epoch, 1)
        return self.tokens[idx[:, None] * self.stride + self._offsets[None, :]]  # (n, T+1)
