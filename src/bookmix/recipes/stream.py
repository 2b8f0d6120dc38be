"""Token streams the trainer reads: a fixed, fully known sequence of (T+1)-token windows.

The trainer never sees books, only a :class:`WindowSource`: ``n_windows`` windows of ``seq_len + 1`` tokens in a
fixed order (all epochs included), fetched by index range. Random access by index makes resume exact (a checkpoint
stores the next window index) and makes the token count known before training starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import DTypeLike

if TYPE_CHECKING:
    from bookmix.recipes.plan import WindowPlan
    from bookmix.recipes.recipe import Recipe


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


class RecipeStream:
    """The windows of one recipe over one library, in the recipe's exact order (a :class:`WindowSource`).

    Built from a :class:`~bookmix.recipes.plan.WindowPlan` (the index of every window) and a way to read shards.
    ``windows(a, b)`` gathers with one fancy index per source over a sliding-window view, so each window is a
    contiguous row copy out of the memmap. Sequence buffers (grain 'books') are assembled on first use from their spans
    and the most recent two are kept (training reads epochs in order).
    """

    def __init__(
        self,
        plan: WindowPlan,
        read_shard: Callable[[int], np.ndarray],
        eob_id: int,
        dtype: DTypeLike,
        recipe: Recipe | None = None,
        fixed: dict[int, np.ndarray] | None = None,
    ) -> None:
        """``fixed``: in-memory token buffers by source id (the probe shelf's), read like shards."""
        self.plan = plan
        self.recipe = recipe
        self.seq_len = int(plan.seq_len)
        self.n_windows = int(plan.n_windows)
        self.eob_id = int(eob_id)
        self.dtype = np.dtype(dtype)
        self._read_shard = read_shard
        self._src = plan.index[:, 0]
        self._off = plan.index[:, 1]
        self._sources = np.unique(self._src).tolist()
        self._views: dict[int, np.ndarray] = {}
        self._buffers: dict[int, np.ndarray] = {}
        self._fixed = {int(k): np.asarray(v, dtype=self.dtype) for k, v in (fixed or {}).items()}

    # -- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, recipe: Recipe, lib: Any, seq_len: int) -> RecipeStream:
        """Check the recipe's books against the library (unknown or holdout ids are errors), then plan it."""
        from bookmix.recipes.books import books_table
        from bookmix.recipes.plan import build_plan

        table = books_table(lib, recipe.books)
        plan = build_plan(recipe, table, int(seq_len))
        fixed = {}
        if recipe.shelf is not None:
            from bookmix.recipes.shelf import SHELF_SOURCE, mix_shelf, shelf_tokens

            tokens = shelf_tokens(recipe.shelf, lib)
            plan = mix_shelf(plan, len(tokens), recipe.shelf, where=f"recipe {recipe.id}")
            fixed[SHELF_SOURCE] = tokens
        return cls(plan, lib.shard, lib.eob_id, _dtype(lib, int(table["shard"][0])), recipe=recipe, fixed=fixed)

    @classmethod
    def from_export(cls, lib: Any, path: str | os.PathLike) -> RecipeStream:
        """Rebuild the identical stream from a window export (:meth:`export`), without the recipe."""
        from bookmix.recipes.plan import WindowPlan

        with np.load(path, allow_pickle=False) as z:
            plan = WindowPlan(seq_len=int(z["seq_len"]), index=z["index"])
            fixed = {}
            for name in z.files:
                if name.startswith("spans_"):
                    plan.spans[-int(name.removeprefix("spans_"))] = z[name]
                elif name.startswith("fixed_"):
                    fixed[-int(name.removeprefix("fixed_"))] = z[name]
        shards = plan.index[plan.index[:, 0] >= 0, 0]
        spans = [v[v[:, 0] >= 0, 0] for v in plan.spans.values()]
        first = int(np.concatenate([shards[:1], *[x[:1] for x in spans]])[0])
        return cls(plan, lib.shard, lib.eob_id, _dtype(lib, first), fixed=fixed)

    # -- WindowSource -----------------------------------------------------------------------------------------------
    @property
    def total_tokens(self) -> int:
        """Tokens predicted over the whole stream (every epoch): known before training starts."""
        return self.n_windows * self.seq_len

    def window_index(self) -> np.ndarray:
        """(n_windows, 2) int64 (source, offset): source ≥ 0 a shard, < 0 a sequence buffer (see plan.py)."""
        return self.plan.index.copy()

    def windows(self, start: int, stop: int) -> np.ndarray:
        if not 0 <= start <= stop <= self.n_windows:
            raise IndexError(f"window range {start}:{stop} outside 0:{self.n_windows}")
        src, off = self._src[start:stop], self._off[start:stop]
        if stop - start and src[0] == src[-1] and (src == src[0]).all():  # one source: the common case
            return self._view(int(src[0]))[off]
        out = np.empty((stop - start, self.seq_len + 1), dtype=self.dtype)
        # With few sources, testing each is cheaper than np.unique on every batch (a sort).
        for s in self._sources if len(self._sources) <= 16 else np.unique(src):
            m = src == s
            if m.any():
                out[m] = self._view(int(s))[off[m]]
        return out  # (n, T+1)

    def batches(self, batch_size: int, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (window index, (B, T+1) array) from window ``start`` on; the last batch may be short."""
        for a in range(start, self.n_windows, batch_size):
            b = min(a + batch_size, self.n_windows)
            yield a, self.windows(a, b)

    def to_torch(self, device: Any = None) -> Any:
        """Every window of the stream as one (n, T+1) int64 tensor on ``device`` (when the set fits there).

        A 25M-token recipe is ~50 MB as uint16; the int64 copy is 4x that, still small on a 96 GB GPU.
        """
        import torch

        return torch.from_numpy(self.windows(0, self.n_windows).astype(np.int64)).to(device)

    # -- export -------------------------------------------------------------------------------------------------------
    def export(self, path: str | os.PathLike) -> None:
        """Write the window order atomically: ``.npz`` (index + buffer spans: enough to rebuild the stream exactly with
        :meth:`from_export`) or any other suffix as text, one ``window<TAB>source<TAB>offset`` line per window."""
        from pathlib import Path

        from bookmix.utils.io import atomic_open

        if Path(path).suffix == ".npz":
            arrays = {"seq_len": np.array(self.seq_len), "index": self.plan.index}
            arrays.update({f"spans_{-k}": v for k, v in self.plan.spans.items()})
            arrays.update({f"fixed_{-k}": v for k, v in self._fixed.items()})  # the probe shelf's tokens
            if self.recipe is not None:
                arrays["recipe_id"] = np.array(self.recipe.id)
            with atomic_open(path, "wb") as fh:
                np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
            return
        with atomic_open(path, "w") as fh:
            fh.write("window\tsource\toffset\n")
            rows = np.column_stack([np.arange(self.n_windows), self.plan.index])
            np.savetxt(fh, rows, fmt="%d", delimiter="\t")

    # -- sources --------------------------------------------------------------------------------------------------
    def _view(self, source: int) -> np.ndarray:
        view = self._views.get(source)
        if view is None:
            if source in self._fixed:
                arr = self._fixed[source]
            else:
                arr = self._read_shard(source) if source >= 0 else self._buffer(source)
            view = sliding_window_view(arr, self.seq_len + 1)  # (len - T, T+1), no copy
            self._views[source] = view
        return view

    def _buffer(self, source: int) -> np.ndarray:
        """Assemble a sequence buffer from its spans (one slice per run of kept chunks; EOB rows are one token)."""
        spans = self.plan.spans[source]
        total = int(spans[:, 2].sum())
        buf = np.empty(total, dtype=self.dtype)
        pos = 0
        shards: dict[int, np.ndarray] = {}
        for shard, begin, length in spans.tolist():
            if shard < 0:
                buf[pos] = self.eob_id
            else:
                arr = shards.get(shard)
                if arr is None:
                    arr = shards[shard] = np.asarray(self._read_shard(shard))  # plain view: no memmap per slice
                buf[pos : pos + length] = arr[begin : begin + length]
            pos += length
        for old in [k for k in self._buffers if k != source][: max(0, len(self._buffers) - 1)]:
            self._buffers.pop(old)
            self._views.pop(old, None)
        self._buffers[source] = buf
        return buf


def _dtype(lib: Any, shard: int) -> np.dtype:
    """The token store's dtype: the library's own when it says, else that of a shard."""
    dtype = getattr(lib, "dtype", None)
    return np.dtype(dtype) if dtype is not None else lib.shard(shard).dtype
