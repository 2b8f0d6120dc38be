"""Fixtures for the eval tests: a small real library of synthetic stories, and tiny real models (untrained and
trained for a few seconds on the library's training books)."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.models.config import ModelConfig
from bookmix.training.device import torch_threads
from support.library import make_library

PLACES = ["garden", "harbour", "mill", "forest", "market", "tower", "river", "chapel", "field", "cellar"]
THINGS = ["lantern", "letter", "basket", "knife", "ring", "map", "coat", "bell"]
SYLLABLES = ["ka", "lo", "mi", "ren", "sa", "tor", "vi", "du", "el", "bra", "quin", "no"]


def story(seed: int, sentences: int = 700) -> str:
    """A synthetic book: four named characters of its own moving between places and handing things over.

    Names are capitalised mid-sentence and recur (entity recall finds them); each book has its own names, so other
    books' passages are easy distractors and the same book's far passages hard ones.
    """
    rng = np.random.default_rng(seed)
    names = ["".join(rng.choice(SYLLABLES, size=2)).capitalize() + "n" for _ in range(4)]
    out = []
    for _ in range(sentences):
        a, b = rng.choice(names, size=2, replace=False)
        place, thing = rng.choice(PLACES), rng.choice(THINGS)
        form = rng.integers(0, 4)
        if form == 0:
            out.append(f"In the morning {a} walked to the {place}, and there {b} was waiting.")
        elif form == 1:
            out.append(f"Then {a} gave the {thing} to {b} and said nothing.")
        elif form == 2:
            out.append(f"After a while, {a} looked at the {thing} for a long time.")
        else:
            out.append(f"The {place} was quiet, so {b} sat down near {a}.")
    return " ".join(out)


@pytest.fixture(scope="session")
def story_library(tmp_path_factory):
    """Ten synthetic books, four held out (seeded split); vocabulary 512."""
    tmp = tmp_path_factory.mktemp("evlib")
    lib = make_library(tmp, {f"story{i:02d}": story(i) for i in range(10)}, vocab_size=512, holdout=0.4, seed=0,
                       lang=["en"] * 5 + ["xx"] * 5, genre=["tale", "saga"] * 5)
    assert len(lib.books(split="holdout")) >= 2, "the eval tests need at least two held-out books"
    return lib


TINY = dict(n_layer=2, n_head=2, d_model=64, block_size=128)
"""A nano-like shape small enough to train in a few seconds on two CPU cores."""


@pytest.fixture(scope="session")
def tiny_cfg(story_library) -> ModelConfig:
    return ModelConfig(name="tiny", vocab_size=story_library.vocab_size, **TINY)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, story_library, tiny_cfg):
    """A real training run (bookmix.training.loop.train) on the library's training books: the run folder."""
    from bookmix.recipes.stream import ArrayWindows
    from bookmix.training.config import TrainConfig
    from bookmix.training.loop import train

    lib = story_library
    tokens = np.concatenate([np.append(lib.tokens(b.id), lib.eob_id) for b in lib.books(split="train")])
    stream = ArrayWindows(tokens.astype(np.int64), tiny_cfg.block_size, epochs=2)
    out = tmp_path_factory.mktemp("run")
    tcfg = TrainConfig(micro_batch=16, lr=3e-3, warmup=10, device="cpu", seed=0, max_tokens=60 * 16 * tiny_cfg.block_size)
    with one_thread():
        train(tiny_cfg, tcfg, stream, out)
    return out


def one_thread():
    """Torch on one thread, then restored: a model this small gains nothing from intra-op threads, and on a busy
    two-core machine (tests of several rooms at once) two threads per process thrash: 10x slower, measured."""
    return torch_threads(1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread_per_module():
    with one_thread():
        yield
