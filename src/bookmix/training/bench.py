"""Measure training throughput of a model shape on this device: tokens/s, achieved FLOP/s, MFU.

The steps timed are the trainer's own (``step.train_step``: same optimizer, autocast, clipping, host→device copy),
on random tokens, after warm-up steps that absorb torch.compile and allocator growth. MFU is achieved FLOP/s
(``cfg.flops_per_token(T)`` × tokens/s) over the device's peak: the bf16 tensor peak of the GPU from the hardware
table, or the measured fp32 matmul peak of the CPU.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.models.model import LM
from bookmix.training.config import TrainConfig
from bookmix.training.device import compute_dtype, enable_fast_math, fit_micro_batch, memory_bytes, resolve_device
from bookmix.training.step import make_optimizer, train_step


@dataclass(frozen=True)
class BenchResult:
    device: str
    """Hardware key (``cpu``, ``h100-sxm``, ...), as the forecaster's calibration is keyed."""
    preset: str
    seq_len: int
    micro_batch: int
    dtype: str
    compile: bool
    params: int
    tokens_per_s: float
    flops_per_s: float
    mfu: float | None
    """Achieved over peak FLOP/s; None for a GPU with no known peak."""
    peak_flops: float | None
    first_step_s: float
    """Wall time of the first step: compilation (with compile) and allocator warm-up."""
    steps: int
    seconds: float
    peak_memory_gb: float | None
    torch_version: str

    def to_dict(self) -> dict:
        return asdict(self)

    def calibration(self) -> dict:
        """The record the forecaster stores (bookmix.forecast.calibration)."""
        keys = ("device", "preset", "seq_len", "micro_batch", "dtype", "tokens_per_s", "flops_per_s", "mfu",
                "peak_flops", "compile", "torch_version")
        return {k: getattr(self, k) for k in keys}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _device_peak(device: torch.device) -> tuple[str, float | None]:
    from bookmix.forecast.hardware import detect_device, measure_cpu_peak_flops, peak_flops

    if device.type == "cpu":
        return "cpu", measure_cpu_peak_flops()
    key = detect_device()
    try:
        return key, peak_flops(key)
    except BookmixError:
        return key, None


def bench(
    cfg: ModelConfig,
    micro_batch: int = 16,
    seq_len: int | None = None,
    device: str | None = None,
    seconds: float = 10.0,
    warmup_steps: int = 3,
    dtype: str = "auto",
    compile: bool = False,
    seed: int = 0,
) -> BenchResult:
    """Train ``cfg`` on random tokens for about ``seconds`` after ``warmup_steps`` and report the throughput."""
    dev = resolve_device(device)
    amp = compute_dtype(dev, dtype)
    enable_fast_math(dev)
    t = seq_len or cfg.block_size
    if t > cfg.block_size:
        raise BookmixError(f"--seq-len: {t} exceeds the model's block_size {cfg.block_size}")
    micro_batch = fit_micro_batch(cfg, micro_batch, t, amp, memory_bytes(dev))
    tcfg = TrainConfig(micro_batch=micro_batch, compile=compile, seed=seed)
    model = LM(cfg, seed=seed).to(dev)
    runner = torch.compile(model) if compile else model
    optimizer = make_optimizer(model, tcfg, dev)
    gen = torch.Generator().manual_seed(seed)
    batches = [torch.randint(0, cfg.vocab_size, (micro_batch, t + 1), generator=gen) for _ in range(4)]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def step(i: int) -> torch.Tensor:
        loss, _ = train_step(runner, optimizer, batches[i % len(batches)], micro_batch=micro_batch, lr=tcfg.lr,
                             grad_clip=tcfg.grad_clip, device=dev, dtype=amp)
        return loss

    t0 = time.perf_counter()
    step(0)
    _sync(dev)
    first = time.perf_counter() - t0
    for i in range(1, warmup_steps + 1):
        step(i)
    _sync(dev)

    steps, t0 = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - t0 < seconds:  # host time only: the GPU queue stays full
        loss = step(steps)
        steps += 1
    float(loss)  # one sync at the end: every queued step is done
    elapsed = time.perf_counter() - t0

    tokens_per_s = steps * micro_batch * t / elapsed
    flops_per_s = cfg.flops_per_token(t) * tokens_per_s
    key, peak = _device_peak(dev)
    mem = torch.cuda.max_memory_allocated(dev) / 1e9 if dev.type == "cuda" else None
    return BenchResult(
        device=key, preset=cfg.name, seq_len=t, micro_batch=micro_batch,
        dtype="bf16" if amp == torch.bfloat16 else "fp32", compile=compile, params=cfg.total_params,
        tokens_per_s=tokens_per_s, flops_per_s=flops_per_s, mfu=flops_per_s / peak if peak else None,
        peak_flops=peak, first_step_s=first, steps=steps, seconds=elapsed, peak_memory_gb=mem,
        torch_version=torch.__version__,
    )


def save_bench_calibration(result: BenchResult) -> str:
    """Store the measurement where the forecaster reads it; returns the file path."""
    from bookmix.forecast.calibration import save_calibration

    record = {k: v for k, v in result.calibration().items() if v is not None}
    return str(save_calibration(record))
