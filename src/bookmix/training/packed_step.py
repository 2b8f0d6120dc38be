"""One step of a pack: a batched forward/backward over (K, B, T) windows, per-model clipping, one PackedAdamW update;
and the pack's held-out loss. Nothing mixes two models: model k's gradient is its own loss's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from bookmix.models.model import IGNORE_INDEX
from bookmix.training.device import autocast
from bookmix.training.packed_adamw import PackedAdamW
from bookmix.training.step import to_device


def clip_grad_norms(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Per-model global gradient norm (K,), and each model's gradients scaled to at most ``max_norm`` as
    ``torch.nn.utils.clip_grad_norm_`` scales a single model's (0 turns clipping off)."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = sum(torch.linalg.vector_norm(g.flatten(1), dim=1, dtype=torch.float32).square() for g in grads)
    norms = sq.sqrt()  # (K,)
    if max_norm > 0:
        coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view((-1,) + (1,) * (g.dim() - 1)).to(g.dtype))
    return norms


def _chunk_share(counts: torch.Tensor, lo: int, size: int) -> torch.Tensor:
    """Fraction of each model's windows (counts (K,)) that fall in rows lo..lo+size of the padded batch."""
    in_chunk = (counts - lo).clamp(min=0, max=size)
    return in_chunk / counts.clamp_min(1)


def packed_step(
    model: Callable[..., Any],
    optimizer: PackedAdamW,
    batch: torch.Tensor,
    counts: torch.Tensor,
    *,
    micro_batch: int,
    lrs: Sequence[float],
    grad_clip: float,
    device: torch.device,
    dtype: torch.dtype,
    corrupt: torch.Tensor | None = None,
    check_memory: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward over ``batch`` (K, E, T+1) in micro-batches, clip, update. Returns (loss (K,), grad norm (K,)).

    Model k's windows are rows ``0 .. counts[k]`` of its slice; the rest is padding (IGNORE_INDEX, which the inputs
    read as token 0 and the loss leaves out). Each micro-batch's per-model loss is weighted by the model's share of
    its windows there, so every model's gradient is the mean over its whole batch, as in ``step.train_step``.
    ``corrupt`` (K,) multiplies the losses (fault injection: NaN for one model); no host sync happens here.
    """
    batch = to_device(batch, device)
    counts_dev = counts.to(device)
    total = torch.zeros(batch.shape[0], device=device)
    for lo in range(0, batch.shape[1], micro_batch):
        chunk = batch[:, lo : lo + micro_batch]
        if check_memory is not None:
            check_memory(chunk.shape[1])
        with autocast(device, dtype):
            # inputs (K, b, T), targets shifted by one; the loss without the pack's whole logits (head_loss)
            _, loss = model(chunk[..., :-1].clamp_min(0), chunk[..., 1:], logits=False)
        if corrupt is not None:
            loss = loss * corrupt
        loss = loss * _chunk_share(counts_dev, lo, chunk.shape[1])
        loss.sum().backward()  # models share no weight: the sum's gradient for model k is its own loss's
        total += loss.detach()
    params = list(optimizer.params.values())
    grad_norm = clip_grad_norms(params, grad_clip)
    optimizer.step(lrs)
    optimizer.zero_grad()
    return total, grad_norm


@torch.no_grad()
def packed_heldout_loss(
    model: torch.nn.Module,
    windows: torch.Tensor,
    counts: torch.Tensor,
    micro_batch: int,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Per-model token-weighted mean loss (K,) on held-out ``windows`` (K, n, T+1), model k's first ``counts[k]`` rows."""
    was_training = model.training
    model.eval()
    windows, counts = windows.to(device), counts.to(device)
    total = torch.zeros(windows.shape[0], device=device, dtype=torch.float64)
    for lo in range(0, windows.shape[1], micro_batch):
        chunk = windows[:, lo : lo + micro_batch]
        with autocast(device, dtype):
            _, loss = model(chunk[..., :-1].clamp_min(0), chunk[..., 1:], logits=False)
        total += loss.double() * _chunk_share(counts, lo, chunk.shape[1]).double()
    model.train(was_training)
    return total


def stack_windows(arrays: list[np.ndarray], seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, n_max, T+1) int64, each model's rows first and IGNORE_INDEX padding after; and the counts (K,)."""
    counts = [a.shape[0] for a in arrays]
    out = np.full((len(arrays), max(counts), seq_len + 1), IGNORE_INDEX, dtype=np.int64)
    for k, a in enumerate(arrays):
        out[k, : a.shape[0]] = a
    return torch.from_numpy(out), torch.tensor(counts, dtype=torch.long)
