"""Fixtures for the dialogue tests: a storyworld (its books and its chat.jsonl), the library ingested from it, and a
tiny bookmix model pretrained on it for a few steps — all real, built once per session in a few seconds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bookmix.library import Library, ingest
from bookmix.models.config import ModelConfig
from bookmix.recipes.stream import ArrayWindows
from bookmix.storyworld import generate
from bookmix.training.config import TrainConfig
from bookmix.training.device import torch_threads
from bookmix.training.loop import train

TINY = dict(n_layer=2, n_head=2, d_model=64, block_size=64)
"""Small enough to train in seconds on one CPU thread; 64 tokens hold a storyworld question and its answer."""


@dataclass
class World:
    root: Path
    chat: Path
    library: Library
    base: Path
    """A run folder holding the pretrained tiny model's checkpoint."""


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    with torch_threads(1):
        return _build_world(tmp_path_factory.mktemp("dialogue"))


def _build_world(root: Path) -> World:
    generate(root / "sw", books=10, seed=3, tokens_per_book=1500)
    ingest([root / "sw" / "books"], root / "lib", tokenizer="train:512", holdout_books=root / "sw" / "holdout.txt",
           metadata=[root / "sw" / "metadata.csv"], workers=1)
    lib = Library.open(root / "lib")
    tokens = np.concatenate([np.asarray(lib.tokens(b.id)) for b in lib.books(split="train")])
    cfg = ModelConfig(vocab_size=lib.vocab_size, **TINY)
    train(cfg, TrainConfig(micro_batch=16, lr=3e-3, warmup=2, max_tokens=16 * 64 * 12), ArrayWindows(tokens, 64),
          root / "base", meta={"library": str(root / "lib")})
    return World(root, root / "sw" / "chat.jsonl", lib, root / "base")
