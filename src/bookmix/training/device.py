"""Where and in what precision a model trains: device choice, autocast, fast-math switches, the memory check."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys

import torch

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig


@contextlib.contextmanager
def torch_threads(n: int):
    """torch's intra-op threads set to ``n`` inside the block, restored after it (tiny models on a shared machine:
    a second thread spinning against other processes slows small ops rather than speeding them)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
    """TF32 matmuls on Ampere and later: fp32 parts (the loss, the optimizer) run on tensor cores at no visible cost.
    On a CPU, :func:`keep_host_memory`."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        keep_host_memory()


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_host_memory_kept: bool | None = None


def keep_host_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the kernel (Linux only, once per
    process; ``BOOKMIX_KEEP_HOST_MEMORY=0`` turns it off). Returns whether it took effect.

    A CPU training step frees and re-allocates the same activation and gradient sizes every step. By default glibc
    serves blocks above a moving threshold (at most 32 MiB) with a fresh ``mmap``, unmaps them on free, and trims the
    heap's free top, so the next step touches new pages: a minor page fault per 4 KiB, zero-filled by the kernel. A
    pack of K models has K-times larger activations and gradients, which is where it hurt most (bench/train_packed.py:
    25k–225k page faults per pack step, up to 40% of a micro × 16 step). With no mmap-served blocks and no trimming,
    steady-state steps reuse the heap and fault nothing; the process keeps its peak heap, which a trainer reaches
    anyway. (Should the heap be unable to grow, glibc still falls back to mmap for the heap itself.)"""
    global _host_memory_kept
    if _host_memory_kept is not None:
        return _host_memory_kept
    _host_memory_kept = False
    if not sys.platform.startswith("linux") or os.environ.get("BOOKMIX_KEEP_HOST_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt: nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1  # no block from mmap: all from the heap, reused
    ok = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok  # the largest int: never trim
    _host_memory_kept = ok
    return ok


def memory_bytes(device: torch.device) -> int:
    """Memory the model may use: the GPU's total, or the machine's RAM for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return 1 << 60


def fit_micro_batch(
    cfg: ModelConfig, micro_batch: int, seq_len: int, dtype: torch.dtype, available: int, models: int = 1
) -> int:
    """The largest micro-batch ≤ ``micro_batch`` (halving) whose estimated memory fits ``available`` bytes, for one
    model or a pack of ``models`` trained together (``forecast.memory.estimate_memory(models=)``).

    Raises a BookmixError before any training when even one window does not fit: weights, gradients and AdamW
    state alone are too big for the device.
    """
    from bookmix.forecast.memory import estimate_memory

    name = "bf16" if dtype == torch.bfloat16 else "fp32"
    mb = micro_batch
    while True:
        need = estimate_memory(cfg, mb, seq_len=seq_len, dtype=name, optimizer="adamw", models=models).total_bytes
        if need <= available:
            return mb
        if mb == 1:
            what = f"model {cfg.name!r}" if models == 1 else f"a pack of {models} {cfg.name!r} models"
            raise BookmixError(
                f"{what} ({cfg.total_params / 1e6:.1f}M parameters each) needs about {need / 2**30:.1f} GiB to train "
                f"even at micro-batch 1 (seq_len {seq_len}, {name}), but the device has {available / 2**30:.1f} GiB; "
                "choose a smaller model, a smaller pack or a bigger device"
            )
        mb = max(1, mb // 2)
