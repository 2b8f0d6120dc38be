"""Fixtures of the recipes room: synthetic token stores (pure plans) and a small real library (streams, CLI).

In a synthetic store every token says where it came from: book b's token at position p is ``(b + 1) * 100_000 + p``
(uint32), and 0 is the end-of-book id, so a test can decode any window back to (book, position).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from bookmix.recipes.books import BookTable
from bookmix.recipes.plan import build_plan
from bookmix.recipes.recipe import Recipe
from bookmix.recipes.stream import RecipeStream

EOB = 0
STRIDE = 100_000


class Synth:
    """Books of given lengths spread over two shards, with catalog columns, as plain arrays."""

    def __init__(self, lens: Sequence[int], holdout: Sequence[int] = (), **columns: Sequence) -> None:
        n = len(lens)
        self.ids = [f"{b:016x}" for b in range(n)]
        self.shards: list[list[int]] = [[], []]
        shard_of, offset = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for b, length in enumerate(lens):
            s = b % 2
            shard_of[b], offset[b] = s, len(self.shards[s])
            self.shards[s] += [(b + 1) * STRIDE + p for p in range(length)] + [EOB]
        self.arrays = [np.array(s, dtype=np.uint32) for s in self.shards]
        split = np.array(["holdout" if b in set(holdout) else "train" for b in range(n)], dtype=object)
        cols = {
            "id": np.array(self.ids, dtype=object),
            "tokens": np.array(lens, np.int64),
            "shard": shard_of,
            "offset": offset,
            "split": split,
        }
        cols.update({k: np.asarray(v) for k, v in columns.items()})
        self.table = BookTable(cols)

    def stream(self, recipe: Recipe, seq_len: int) -> RecipeStream:
        plan = build_plan(recipe, self.table, seq_len)
        return RecipeStream(plan, lambda i: self.arrays[i], EOB, np.uint32, recipe=recipe)

    def book_of(self, tokens: np.ndarray) -> np.ndarray:
        """Book index of each token (-1 for the end-of-book id)."""
        return np.where(tokens == EOB, -1, tokens.astype(np.int64) // STRIDE - 1)

    def pos_of(self, tokens: np.ndarray) -> np.ndarray:
        return tokens.astype(np.int64) % STRIDE


@pytest.fixture(scope="session")
def synth() -> Callable[..., Synth]:
    return Synth


WORDS = {
    "sea": [
        "ship",
        "sea",
        "captain",
        "sail",
        "wave",
        "harbor",
        "storm",
        "anchor",
        "deck",
        "mast",
        "crew",
        "whale",
        "island",
        "ocean",
        "tide",
    ],
    "court": [
        "king",
        "queen",
        "castle",
        "knight",
        "sword",
        "throne",
        "crown",
        "court",
        "prince",
        "dragon",
        "battle",
        "lord",
        "lady",
        "realm",
    ],
    "common": [
        "the",
        "of",
        "and",
        "a",
        "to",
        "in",
        "he",
        "was",
        "that",
        "it",
        "his",
        "her",
        "you",
        "as",
        "had",
        "with",
        "for",
        "she",
        "not",
        "at",
    ],
}


def topic_texts(n: int, seed: int = 0, words: int = 600) -> list[str]:
    """Texts alternating between two topics (plus shared function words), of varied lengths."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        topic = WORDS["sea"] if i % 2 == 0 else WORDS["court"]
        out.append(" ".join(rng.choice(topic + WORDS["common"], size=words + 97 * i)))
    return out


@pytest.fixture(scope="session")
def small_lib(tmp_path_factory):
    """A real library of 14 books (two topics, years 1800..1813), 3 of them held out."""
    from support.library import make_library

    root = tmp_path_factory.mktemp("recipes_lib")
    return make_library(root, topic_texts(14), holdout=0.2, year=[1800 + i for i in range(14)])


@pytest.fixture(scope="session")
def train_ids(small_lib) -> list[str]:
    t = small_lib.table(["id", "split"])
    return [b for b, s in zip(t["id"], t["split"], strict=True) if s == "train"]


@pytest.fixture(scope="session")
def holdout_ids(small_lib) -> list[str]:
    t = small_lib.table(["id", "split"])
    return [b for b, s in zip(t["id"], t["split"], strict=True) if s == "holdout"]
