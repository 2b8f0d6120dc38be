"""Held-out loss during training: mean cross-entropy over windows spread evenly across a held-out stream."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bookmix.recipes.stream import WindowSource
from bookmix.training.device import autocast


def sample_windows(source: WindowSource, k: int) -> np.ndarray:
    """``k`` windows at evenly spaced indices (every held-out book gets a say, not just the first), (k, T+1)."""
    n = source.n_windows
    if n == 0:
        raise ValueError("held-out stream has no windows")
    idx = np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(np.int64))
    return np.concatenate([source.windows(int(i), int(i) + 1) for i in idx])


@torch.no_grad()
def heldout_loss(
    model: nn.Module, windows: np.ndarray, micro_batch: int, device: torch.device, dtype: torch.dtype
) -> float:
    """Token-weighted mean loss of ``model`` on ``windows`` (n, T+1). Every window has T targets, so a mean of
    per-batch means weighted by batch size is the mean over tokens."""
    was_training = model.training
    model.eval()
    batch = torch.from_numpy(windows.astype(np.int64, copy=False)).to(device)
    total = torch.zeros((), device=device, dtype=torch.float64)
    for chunk in batch.split(micro_batch):
        with autocast(device, dtype):
            _, loss = model(chunk[:, :-1], chunk[:, 1:], logits=False)
        total += loss.double() * chunk.shape[0]
    model.train(was_training)
    return float(total / batch.shape[0])
