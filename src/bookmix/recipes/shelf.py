"""The probe shelf in a recipe's stream: generated books mixed in at one fixed token share.

A recipe with ``shelf:`` reads its own books exactly as without it, plus windows of the probe shelf
(:mod:`bookmix.storyworld.shelf`: small generated books, English and/or Russian, whose facts, rules and two-hop chains
the ``probe_shelf`` eval task asks about), spread evenly through the whole stream so that the share is the same at
every point of training. A campaign gives every recipe the same shelf (``search.probe_shelf``), so the real books are
what varies between trials. :func:`mix_shelf` is the one place the mixing happens; ``Recipe.stream`` calls it, and
through it every path that trains a recipe (single, packed, fine-tune, the campaign's workers).

The shelf is tokenized with the library's tokenizer when the stream is built (a few tens of thousands of tokens,
milliseconds), each book followed by the end-of-book token; it is not part of the library.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bookmix.errors import BookmixError

SHELF_SOURCE = -(1 << 40)
"""The window-index source of the shelf's token buffer (apart from shards ≥ 0 and grain-'books' buffers −1, −2, ...)."""


class ProbeShelf(BaseModel):
    """The probe shelf a recipe reads beside its books. The same settings give the same books and probes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    langs: list[Literal["en", "ru"]] = Field(default=["en"], min_length=1)
    """Languages of the shelf: one set of books (and probes) per language; ["en", "ru"] for a mixed library."""
    share: float = 0.05
    """Fraction of the trained tokens taken by the shelf, in (0, 0.5]. 5% leaves the real books 95% of the stream
    while a million-token recipe still reads a default shelf (~10k tokens a language) a few times over."""
    seed: int = Field(0, ge=0)
    fact_books: int = Field(3, ge=1)
    people_per_book: int = Field(4, ge=1)
    """People per fact book (four facts each): 3 × 4 people give 48 fact probes and 24 of each two-hop kind per
    language; few people means many repetitions of each fact, which a small model needs to store it."""
    rule_books: int = Field(2, ge=1)
    tokens_per_book: int = Field(1200, ge=200)
    """Approximate book length (characters / 4): each fact is stated ~15 times per read of its book."""
    exclude: list[str] = Field(default_factory=list)
    """Shelf books left out of training (``en/rule_000``): ablations. The probes stay the same."""

    @field_validator("share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0.0 < v <= 0.5:
            raise ValueError(f"must be in (0, 0.5], got {v:g}")
        return v

    def build(self) -> Any:
        """The shelf's books and probes (:class:`bookmix.storyworld.shelf.Shelf`), checking ``exclude``."""
        from bookmix.storyworld.shelf import build_shelf

        shelf = build_shelf(
            list(self.langs), self.seed, self.fact_books, self.people_per_book, self.rule_books, self.tokens_per_book
        )
        unknown = sorted(set(self.exclude) - set(shelf.names))
        if unknown:
            raise BookmixError(
                f"shelf.exclude: unknown shelf book(s) {', '.join(unknown)}; the shelf holds {', '.join(shelf.names)}"
            )
        if len(set(self.exclude)) == len(shelf.names):
            raise BookmixError("shelf.exclude: leaves no shelf book to read; drop the shelf instead")
        return shelf


def shelf_tokens(spec: ProbeShelf, lib: Any) -> np.ndarray:
    """The shelf's books (but the excluded ones) in the library's tokens, each followed by the end-of-book token."""
    books = [b for b in spec.build().books if b.name not in set(spec.exclude)]
    enc = lib.encode([b.text for b in books])
    eob = np.array([lib.eob_id], dtype=enc[0].dtype)
    return np.concatenate([part for ids in enc for part in (ids, eob)])


def mix_shelf(plan: Any, shelf_len: int, spec: ProbeShelf, where: str = "recipe") -> Any:
    """``plan`` (a WindowPlan of n windows) with share/(1−share)·n shelf windows spread evenly through it.

    The shelf's windows are read in passes, each a fresh seeded permutation of its (T+1)-token windows, so every
    shelf token is read equally often. A share too small for one whole pass is an error: the probes would ask about
    books the model never read in full.
    """
    T, n = plan.seq_len, plan.n_windows
    per_pass = (shelf_len - 1) // T
    n_shelf = int(round(spec.share / (1.0 - spec.share) * n))
    if per_pass < 1 or n_shelf < per_pass:
        need = per_pass / (per_pass + n) if per_pass >= 1 else float("nan")
        raise BookmixError(
            f"{where}: shelf does not fit the token budget: shelf.share {spec.share:g} beside the recipe's {n * T} tokens is "
            f"{n_shelf * T} tokens, less than one read of the shelf ({max(per_pass, 1) * T} tokens); raise shelf.share to "
            f"≥ {need:.3g}, train more tokens, or shrink the shelf (langs, fact_books, rule_books, tokens_per_book)"
        )
    rng = np.random.default_rng([spec.seed, 0x5E1F])
    passes = -(-n_shelf // per_pass)
    order = np.concatenate([rng.permutation(per_pass) for _ in range(passes)])[:n_shelf]
    shelf_rows = np.stack([np.full(n_shelf, SHELF_SOURCE, dtype=np.int64), order.astype(np.int64) * T], axis=1)
    pos = ((np.arange(n_shelf) + 0.5) * n / n_shelf).astype(np.int64)  # before recipe window pos[i]: evenly spread
    # Epoch boundaries move by the shelf windows inserted before them.
    bounds = np.cumsum(plan.epoch_windows) if plan.epoch_windows else np.array([n])
    inserted = np.searchsorted(pos, bounds, side="left")
    new_bounds = bounds + inserted
    epoch_windows = np.diff(np.concatenate([[0], new_bounds])).astype(int).tolist()
    return dataclasses.replace(plan, index=np.insert(plan.index, pos, shelf_rows, axis=0), epoch_windows=epoch_windows)
