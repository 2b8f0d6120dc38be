"""Toy shapes and streams for the packed trainer's tests: each model gets its own phrase and its own length."""

from __future__ import annotations

import numpy as np

from bookmix.models.config import ModelConfig
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.config import TrainConfig

TOY = ModelConfig(name="toy", vocab_size=64, n_layer=2, n_head=2, d_model=32, block_size=32)
SEQ = 32
# grad_accum 2 so the micro-batch loop and the per-model weighting are exercised; warm-up shorter than every run.
FAST = TrainConfig(micro_batch=4, grad_accum=2, lr=3e-3, warmup=3, log_every=2, checkpoint_every=5, device="cpu")


def phrase_tokens(n_tokens: int, seed: int, period: int = 50) -> np.ndarray:
    """A random phrase of ``period`` tokens repeated: learnable, and different for every seed."""
    phrase = np.random.default_rng(seed).integers(0, TOY.vocab_size, period)
    return np.resize(phrase, n_tokens).astype(np.uint16)


def streams(lengths=(3000, 2000, 2600)) -> list[ArrayWindows]:
    """One stream per model, of different lengths: 93, 62 and 81 windows → 12, 8 and 11 steps of 8 windows."""
    return [ArrayWindows(phrase_tokens(n, seed), SEQ) for seed, n in enumerate(lengths)]


def heldout() -> ArrayWindows:
    return ArrayWindows(phrase_tokens(800, seed=9), SEQ)
