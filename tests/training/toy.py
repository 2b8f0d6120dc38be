"""Toy model and data for the trainer's tests: tiny enough for CPU, structured enough that the loss must fall."""

from __future__ import annotations

import numpy as np

from bookmix.models.config import ModelConfig
from bookmix.recipes.stream import ArrayWindows

TOY = ModelConfig(name="toy", vocab_size=64, n_layer=2, n_head=2, d_model=32, block_size=32)


def pattern_tokens(n_tokens: int = 20_000, period: int = 50, seed: int = 0) -> np.ndarray:
    """A random phrase of ``period`` tokens repeated: after one period the next token is fully predictable."""
    phrase = np.random.default_rng(seed).integers(0, TOY.vocab_size, period)
    return np.resize(phrase, n_tokens).astype(np.uint16)


def pattern_stream(n_tokens: int = 20_000, seq_len: int = 32, epochs: int = 1) -> ArrayWindows:
    return ArrayWindows(pattern_tokens(n_tokens), seq_len, epochs=epochs)
