"""One optimizer step of one model: the inner loop of the single, fine-tune and SFT steppers and of the benchmark.

No host synchronisation happens here: the loss and the gradient norm come back as device tensors, and the caller
reads them only when it logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bookmix.models.head import IGNORE_INDEX
from bookmix.training.config import TrainConfig
from bookmix.training.device import autocast
from bookmix.training.faults import FaultInjector


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (decaying norm gains toward 0 only hurts); fused kernels on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = True if device.type == "cuda" else None
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=fused)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host windows → device; pinned memory lets the copy overlap with the previous step's kernels."""
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch


def train_step(
    model: Callable[..., Any],
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    *,
    micro_batch: int,
    lr: float,
    grad_clip: float,
    device: torch.device,
    dtype: torch.dtype,
    step: int = 0,
    faults: FaultInjector | None = None,
    targets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward over ``batch`` in micro-batches, clip, update. Returns (mean loss, grad norm).

    ``batch`` is windows (n, T+1), inputs ``[:, :-1]`` and targets ``[:, 1:]``; or, with ``targets`` (n, L) holding
    IGNORE_INDEX where nothing is learned (chat SFT), the inputs (n, L). Each micro-batch's loss is weighted by its
    share of the learned tokens, so the gradient is the mean over the whole batch whatever the split: an
    out-of-memory backoff that halves the micro-batch does not change the step.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    n = batch.shape[0]
    if targets is None:
        chunks = [(c[:, :-1], c[:, 1:], c.shape[0] / n) for c in to_device(batch, device).split(micro_batch)]
    else:  # shares from the host copy: no device sync
        learned = (targets != IGNORE_INDEX).sum(1).split(micro_batch)
        total_learned = max(sum(int(c.sum()) for c in learned), 1)
        xs, ys = to_device(batch, device).split(micro_batch), to_device(targets, device).split(micro_batch)
        chunks = [(x, y, int(c.sum()) / total_learned) for x, y, c in zip(xs, ys, learned, strict=True)]
    total = torch.zeros((), device=device)
    for inputs, chunk_targets, share in chunks:
        if faults is not None:
            faults.check_memory(inputs.shape[0])
        with autocast(device, dtype):
            # the loss without holding the whole logits (models.head)
            _, loss = model(inputs, chunk_targets, logits=False)
        if faults is not None:
            loss = faults.corrupt(loss, step)
        loss = loss * share
        loss.backward()
        total += loss.detach()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, grad_norm
