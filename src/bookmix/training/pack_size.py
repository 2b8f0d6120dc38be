"""How many models of one shape to train together: from the memory estimate (``bookmix.forecast.memory``) and the
point where a pack has enough arithmetic per step to keep a GPU busy; and how many a CPU step takes at once."""

from __future__ import annotations

import math

import torch

from bookmix.models.config import ModelConfig
from bookmix.training.config import TrainConfig
from bookmix.training.device import compute_dtype, memory_bytes, resolve_device

MAX_PACK = 64
"""Most models in one pack. Past a few dozen micro-models a GPU is saturated and a bigger pack only adds memory."""

PACK_TARGET_FLOPS_PER_TOKEN = 9e8
"""Training FLOPs per token of the whole pack worth aiming at: about GPT-2 small's (124M parameters, T=1024), a model
that already keeps an H100's tensor cores well fed. K = this / one model's FLOPs per token: ~40 nano, ~8 micro."""


def _dtype_name(dtype: torch.dtype) -> str:
    return "bf16" if dtype == torch.bfloat16 else "fp32"


def pack_bytes(model_cfg: ModelConfig, k: int, micro_batch: int, seq_len: int, dtype: str) -> int:
    """Estimated peak bytes of a pack of ``k``: k models' tensors, but one output-layer block and one process's CUDA
    context (``forecast.memory.estimate_memory(models=k)``)."""
    from bookmix.forecast.memory import estimate_memory

    return estimate_memory(
        model_cfg, micro_batch, seq_len=seq_len, dtype=dtype, optimizer="adamw", models=k
    ).total_bytes


def pack_size(model_cfg: ModelConfig, micro_batch: int, seq_len: int, dtype: str, available: int) -> int:
    """Models of this shape to train together in ``available`` bytes: as many as fit at ``micro_batch``, no more than
    it takes to keep a GPU busy (:data:`PACK_TARGET_FLOPS_PER_TOKEN`), at most :data:`MAX_PACK`, at least 1."""
    fits = 0
    while fits < MAX_PACK and pack_bytes(model_cfg, fits + 1, micro_batch, seq_len, dtype) <= available:
        fits += 1
    busy = math.floor(PACK_TARGET_FLOPS_PER_TOKEN / model_cfg.flops_per_token(seq_len))
    return int(max(1, min(fits, busy, MAX_PACK)))


def auto_pack_size(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    device: str | torch.device | None = None,
    seq_len: int | None = None,
    available: int | None = None,
) -> int:
    """The pack size for ``device``: :func:`pack_size` from its memory (or ``available`` bytes, planning for another
    machine) on a GPU; 1 on a CPU, where packing gains little: a CPU already runs a small model's matmuls at full
    speed (bench/train_packed.py: 0.95–1.15× sequential on 2 threads; a forced pack trains in sub-packs of
    :func:`cpu_pack_cap`)."""
    dev = resolve_device(device if device is not None else train_cfg.device)
    if dev.type == "cpu" and available is None:
        return 1
    dtype = _dtype_name(compute_dtype(dev, train_cfg.dtype))
    t = seq_len or model_cfg.block_size
    return pack_size(
        model_cfg, train_cfg.micro_batch, t, dtype, memory_bytes(dev) if available is None else int(available)
    )


PACK_CPU_ACTIVATION_BYTES = 32 << 20
"""On a CPU, the most bytes the widest activation of one packed forward (K × micro-batch × T × max(d_ff, d_model)
floats) may take; a bigger pack trains as sub-packs (:func:`cpu_pack_cap`). A pack's activations are K times a single
model's and stream from memory rather than cache once too big. Micro × 16 on 2 threads, with the pack step of
bench/train_packed.py: whole micro-batches of 8 (64 MiB) 0.93× sequential, split into 4 or 2 windows a pass
0.96–1.01×, sub-packs of 8 at whole micro-batches 1.06×."""


def cpu_pack_cap(model_cfg: ModelConfig, micro_batch: int, seq_len: int) -> int:
    """On a CPU, the most models one packed step takes: as many as keep a whole micro-batch's widest activation within
    :data:`PACK_CPU_ACTIVATION_BYTES`. A bigger pack would have to split its micro-batches, and on a CPU the extra
    passes cost more than packing saves (micro × 32 split to 2 windows a pass: 0.81× sequential), so
    :func:`train_pack` trains it as sub-packs of this size, one after another, each model exactly as in one pack."""
    widest = 4 * micro_batch * seq_len * max(model_cfg.ff_dim, model_cfg.d_model)
    return int(max(1, min(MAX_PACK, PACK_CPU_ACTIVATION_BYTES // widest)))
