"""Scene-linking items from held-out books: a context passage, its true next passage, and distractor passages.

Pure: items are token spans ``[book, start, length]`` chosen from the books' token counts and a seed, so building
200 items reads no tokens at all and the same seed gives the same items on any machine.

Distractors come from the same book far away (same style, same names: only the thread of the story tells them
apart) and from other held-out books (different style: easier). Every candidate has the same token length, so raw
log-likelihoods compare without length bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PassageSpec:
    context_tokens: int
    passage_tokens: int
    gap_tokens: int
    n_same_book: int
    n_other_books: int
    min_distance: int


def build_passage_items(
    book_ids: list[str], book_tokens: list[int], n_items: int, spec: PassageSpec, seed: int
) -> list[dict]:
    """``n_items`` items spread round-robin over the books long enough to hold a context, gap and passage.

    Each item: ``{"book", "context": [book, start, len], "candidates": [[book, start, len], ...], "answer"}`` with
    the true passage at a random position among the candidates.
    """
    rng = np.random.default_rng(seed)
    need = spec.context_tokens + spec.gap_tokens + spec.passage_tokens
    usable = [i for i, n in enumerate(book_tokens) if n >= need]
    if not usable:
        return []
    P = spec.passage_tokens
    items = []
    for k in range(n_items):  # one iteration per item, a few hundred at most
        b = usable[k % len(usable)]
        n = book_tokens[b]
        ctx_start = int(rng.integers(0, n - need + 1))
        true_start = ctx_start + spec.context_tokens + spec.gap_tokens
        cands = [[book_ids[b], true_start, P]]
        cands += _same_book(rng, book_ids[b], n, true_start, spec)
        others = [i for i in range(len(book_ids)) if i != b and book_tokens[i] >= P]
        n_other = spec.n_same_book + spec.n_other_books + 1 - len(cands)
        if others:
            for o in rng.choice(others, size=n_other, replace=len(others) < n_other):
                cands.append([book_ids[int(o)], int(rng.integers(0, book_tokens[int(o)] - P + 1)), P])
        else:  # a single held-out book: every distractor from it, as far away as it allows
            cands += _same_book(rng, book_ids[b], n, true_start, spec, count=n_other, min_distance=need)
        if len(cands) < 2:
            continue
        order = rng.permutation(len(cands))
        items.append(
            {
                "book": book_ids[b],
                "context": [book_ids[b], ctx_start, spec.context_tokens],
                "candidates": [cands[int(j)] for j in order],
                "answer": int(np.flatnonzero(order == 0)[0]),
            }
        )
    return items


def _same_book(rng, book: str, n: int, true_start: int, spec: PassageSpec, count=None, min_distance=None) -> list:
    """Passages of the same book at least ``min_distance`` tokens from the true one (none if the book is too short)."""
    count = spec.n_same_book if count is None else count
    dist = spec.min_distance if min_distance is None else min_distance
    P = spec.passage_tokens
    dist = max(dist, P)  # never overlapping the true passage
    n_low = max(0, true_start - dist + 1)  # starts 0 .. true_start - dist
    high0 = true_start + dist
    n_high = max(0, n - P - high0 + 1)  # starts high0 .. n - P
    total = n_low + n_high
    if total == 0:
        return []
    pick = rng.choice(total, size=min(count, total), replace=False)
    return [[book, int(s if s < n_low else high0 + s - n_low), P] for s in pick]
