"""Where and in what precision a model trains: device choice, autocast, fast-math switches, the memory check."""

from __future__ import annotations

import contextlib
import os

import torch

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig


def resolve_device(name: str | torch.device | None) -> torch.device:
    """'auto' (or None) → CUDA when available, else CPU. An unavailable CUDA device is a clear error."""
    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise BookmixError(f"device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BookmixError(f"device: {name!r} requested but no CUDA GPU is available to torch {torch.__version__}")
    return dev


def compute_dtype(device: torch.device, setting: str) -> torch.dtype:
    """'auto' → bf16 on CUDA (tensor cores, no loss scaling needed), fp32 on CPU (exact and reproducible)."""
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[setting]


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed precision around forward passes: weights and optimizer stay fp32, matmuls run in ``dtype``."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def enable_fast_math(device: torch.device) -> None:
    """TF32 matmuls on Ampere and later: fp32 parts (the loss, the optimizer) run on tensor cores at no visible cost."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def memory_bytes(device: torch.device) -> int:
    """Memory the model may use: the GPU's total, or the machine's RAM for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return 1 << 60


def fit_micro_batch(cfg: ModelConfig, micro_batch: int, seq_len: int, dtype: torch.dtype, available: int) -> int:
    """The largest micro-batch ≤ ``micro_batch`` (halving) whose estimated memory fits ``available`` bytes.

    Raises a BookmixError before any training when even one window does not fit: weights, gradients and AdamW
    state alone are too big for the device.
    """
    from bookmix.forecast.memory import estimate_memory

    name = "bf16" if dtype == torch.bfloat16 else "fp32"
    mb = micro_batch
    while True:
        need = estimate_memory(cfg, mb, seq_len=seq_len, dtype=name, optimizer="adamw").total_bytes
        if need <= available:
            return mb
        if mb == 1:
            raise BookmixError(
                f"model {cfg.name!r} ({cfg.total_params / 1e6:.1f}M parameters) needs about {need / 2**30:.1f} GiB to train "
                f"even at micro-batch 1 (seq_len {seq_len}, {name}), but the device has {available / 2**30:.1f} GiB; "
                "choose a smaller model or a bigger device"
            )
        mb = max(1, mb // 2)
