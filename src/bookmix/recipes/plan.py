"""From a recipe to its exact window order, and the stream that gathers those windows from the token store.

Two steps, so that the order is known (and exportable) before any token is read:

1. :func:`build_plan` — pure: recipe + catalog columns + T → a :class:`WindowPlan`, the index of every window of the
   stream, all epochs included: ``index[i] = (source, offset)``. ``source ≥ 0`` is a token-store shard and the window is
   ``shard[offset : offset + T + 1]``; ``source < 0`` is a *sequence buffer* (grain 'books': kept text of the books in
   order, end-of-book token after each), described by ``spans[source]`` = rows of (shard, start, length), shard -1
   meaning one end-of-book token.
2. :class:`~bookmix.recipes.stream.RecipeStream` — IO: gathers windows with one numpy fancy index per source over a sliding-window view of the
   memmapped shard (a contiguous row copy per window; no Python loop per window or per token).

Window layout: windows hold T+1 tokens and start every T tokens (consecutive windows overlap by one token), so every
kept token but the last of a run is a target exactly once. With grains 'windows'/'blocks' a window lies inside one
book and the book's last (L-1) mod T tokens are not read; with grain 'books' windows run through the buffer and only
the last partial window of each epoch is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bookmix.errors import BookmixError
from bookmix.recipes.books import BookTable
from bookmix.recipes.order import order_books
from bookmix.recipes.sparsity import book_rng, kept_chunks

if TYPE_CHECKING:
    from bookmix.recipes.recipe import Recipe

EOB = -1  # the shard value of a span that stands for one end-of-book token


@dataclass
class WindowPlan:
    """The full window order of one recipe at one T."""

    seq_len: int
    index: np.ndarray  # (n_windows, 2) int64: (source, offset)
    spans: dict[int, np.ndarray] = field(
        default_factory=dict
    )  # buffer source (< 0) -> (m, 3) int64 (shard, start, len)
    epoch_windows: list[int] = field(default_factory=list)  # windows in each epoch
    phase_windows: list[list[int]] = field(default_factory=list)  # windows of each phase, per epoch (not for 'books')

    @property
    def n_windows(self) -> int:
        return len(self.index)


def _epoch_rng(recipe: Recipe, epoch: int, phase: int) -> np.random.Generator:
    key = epoch if recipe.reshuffle else 0
    return np.random.default_rng([recipe.seed, 0x0DE5, key, phase])


def _book_windows(recipe: Recipe, table: BookTable, rows: np.ndarray, seq_len: int) -> list[np.ndarray]:
    """Kept window start offsets (in the book's shard) of each book: fixed for the whole recipe."""
    per_chunk = max(1, int(recipe.sparsity.chunk_tokens / seq_len + 0.5))  # chunk_tokens rounded to whole windows
    out = []
    for r in rows:
        length, offset = int(table["tokens"][r]), int(table["offset"][r])
        n_win = max(0, (length - 1) // seq_len)
        n_chunks = -(-n_win // per_chunk)
        kept = kept_chunks(n_chunks, recipe.sparsity, book_rng(recipe.seed, str(table["id"][r])))
        win = (kept[:, None] * per_chunk + np.arange(per_chunk)[None, :]).ravel()
        out.append(offset + win[win < n_win] * seq_len)
    return out


def _book_spans(recipe: Recipe, table: BookTable, row: int) -> np.ndarray:
    """(m, 3) spans of one book's kept text, adjacent chunks merged, then its end-of-book token."""
    length, offset, shard = int(table["tokens"][row]), int(table["offset"][row]), int(table["shard"][row])
    size = recipe.sparsity.chunk_tokens
    kept = kept_chunks(-(-length // size), recipe.sparsity, book_rng(recipe.seed, str(table["id"][row])))
    if len(kept):
        run_start = np.flatnonzero(np.diff(kept, prepend=-2) != 1)  # first chunk of each run of adjacent chunks
        run_end = np.append(run_start[1:], len(kept)) - 1
        starts = kept[run_start] * size
        ends = np.minimum((kept[run_end] + 1) * size, length)
        body = np.stack([np.full(len(starts), shard), offset + starts, ends - starts], axis=1)
    else:
        body = np.zeros((0, 3), dtype=np.int64)
    return np.concatenate([body, [[EOB, 0, 1]]]).astype(np.int64)


def _arrange(grain: str, block: int, interleave: bool, lens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One phase-epoch of a shuffling grain. The books' kept windows are laid out book after book (in phase order,
    ``lens[j]`` windows for the j-th book); returns the permutation of that layout that the stream reads."""
    total = int(lens.sum())
    book_pos = np.repeat(np.arange(len(lens)), lens)
    within = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)  # index of the window inside its book
    if grain == "windows" and not interleave:
        return rng.permutation(total)
    blk = within // (block if grain == "blocks" else 1)
    if interleave:
        # Round robin: block 0 of every book (in book order), then block 1, ...; books that run out drop out.
        return np.lexsort((within, book_pos, blk))
    # blocks: shuffle whole blocks, keep the windows of a block in book order
    block_id = np.cumsum(np.r_[True, (np.diff(book_pos) != 0) | (np.diff(blk) != 0)]) - 1 if total else blk
    rank = rng.permutation(int(block_id[-1]) + 1 if total else 0)
    return np.lexsort((within, rank[block_id]))


def build_plan(recipe: Recipe, table: BookTable, seq_len: int) -> WindowPlan:
    """The window order of ``recipe`` over the books of ``table`` (which must hold every recipe book)."""
    if seq_len < 1:
        raise BookmixError(f"seq_len: must be ≥ 1, got {seq_len}")
    phases = recipe.phase_list()
    rows_of = {b: r for b, r in zip(recipe.books, table.rows(recipe.books), strict=True)}
    plan = WindowPlan(seq_len=seq_len, index=np.zeros((0, 2), dtype=np.int64))
    chunks: list[np.ndarray] = []
    needs_rng = recipe.reshuffle and any(o in ("random", "cluster_blocks") for _, o in phases)
    wins_of: dict[str, np.ndarray] = {}
    if recipe.grain != "books":
        all_rows = np.array([rows_of[b] for b in recipe.books], dtype=np.int64)
        wins_of = dict(zip(recipe.books, _book_windows(recipe, table, all_rows, seq_len), strict=True))
    for epoch in range(recipe.epochs):
        if recipe.grain == "books":
            key = -1 - (epoch if needs_rng else 0)
            if key not in plan.spans:
                spans = []
                for p, (books, order) in enumerate(phases):
                    rows = np.array([rows_of[b] for b in books], dtype=np.int64)
                    seq = order_books(order, _cols(table, rows), len(rows), _epoch_rng(recipe, epoch, p))
                    spans += [_book_spans(recipe, table, int(rows[i])) for i in seq]
                plan.spans[key] = np.concatenate(spans)
            n = max(0, (int(plan.spans[key][:, 2].sum()) - 1) // seq_len)
            chunks.append(np.stack([np.full(n, key), np.arange(n, dtype=np.int64) * seq_len], axis=1))
            plan.epoch_windows.append(n)
            continue
        per_phase = []
        for p, (books, order) in enumerate(phases):
            rows = np.array([rows_of[b] for b in books], dtype=np.int64)
            rng = _epoch_rng(recipe, epoch, p)
            seq = order_books(order, _cols(table, rows), len(rows), rng)
            parts = [wins_of[books[i]] for i in seq]
            lens = np.array([len(w) for w in parts], dtype=np.int64)
            offsets = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            shards = np.repeat(table["shard"][rows[seq]], lens)
            perm = _arrange(recipe.grain, recipe.block_windows, order == "interleave", lens, rng)
            chunks.append(np.stack([shards[perm], offsets[perm]], axis=1))
            per_phase.append(len(perm))
        plan.phase_windows.append(per_phase)
        plan.epoch_windows.append(sum(per_phase))
    plan.index = np.concatenate(chunks).astype(np.int64) if chunks else plan.index
    if plan.n_windows == 0:
        raise BookmixError(
            f"recipe {recipe.id}: its books hold no window of {seq_len + 1} tokens (books too short for seq_len {seq_len})"
        )
    return plan


def _cols(table: BookTable, rows: np.ndarray) -> dict[str, np.ndarray]:
    return {c: table[c][rows] for c in ("tokens", "difficulty", "year", "cluster") if c in table}
