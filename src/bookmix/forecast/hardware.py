"""The hardware table: peak dense BF16 throughput, memory, bandwidth and power of the devices bookmix forecasts for.

Peaks are *dense* tensor-core BF16 with FP32 accumulation, which is what mixed-precision training runs (the
sparse figures on the datasheets are twice these; GeForce cards run FP32-accumulate at half their FP16-accumulate
rate). Memory is in decimal GB as the vendors state it. The CPU has no datasheet figure: its peak is measured here
with a timed FP32 matmul, once per process.
"""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass

from bookmix.errors import BookmixError


@dataclass(frozen=True)
class GPUSpec:
    key: str
    """Short name used on the command line and in calibration records (``rtx-pro-6000``)."""
    name: str
    """The vendor's product name, as ``torch.cuda.get_device_name`` reports it (roughly)."""
    bf16_tflops: float | None
    """Dense BF16 tensor TFLOP/s with FP32 accumulation; None where it must be measured (the CPU, unknown GPUs)."""
    memory_gb: float
    """Device memory in decimal GB (1e9 bytes)."""
    bandwidth_tbs: float | None
    """Memory bandwidth in TB/s."""
    tdp_w: float | None
    """Board power in watts; used for the energy estimate (an upper bound: training rarely sits at full TDP)."""
    source: str
    """Where the figures come from."""

    @property
    def peak_flops(self) -> float | None:
        """Peak FLOP/s, or None where it must be measured."""
        return None if self.bf16_tflops is None else self.bf16_tflops * 1e12

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gb * 1e9)


_BLACKWELL_PRO = "NVIDIA RTX Blackwell GPU Architecture whitepaper (RTX PRO 6000 Blackwell Workstation Edition)"
_BLACKWELL = "NVIDIA RTX Blackwell GPU Architecture whitepaper (GeForce RTX 5090)"
_ADA = "NVIDIA Ada GPU Architecture whitepaper, appendix A (GeForce RTX 4090)"
_AMPERE = "NVIDIA Ampere GA102 GPU Architecture whitepaper, appendix A (GeForce RTX 3090)"

GPUS: dict[str, GPUSpec] = {
    spec.key: spec
    for spec in [
        GPUSpec("rtx-pro-6000", "NVIDIA RTX PRO 6000 Blackwell", 503.8, 96, 1.792, 600, _BLACKWELL_PRO),
        GPUSpec("rtx-5090", "NVIDIA GeForce RTX 5090", 209.5, 32, 1.792, 575, _BLACKWELL),
        GPUSpec("rtx-4090", "NVIDIA GeForce RTX 4090", 165.2, 24, 1.008, 450, _ADA),
        GPUSpec("rtx-3090", "NVIDIA GeForce RTX 3090", 71.0, 24, 0.936, 350, _AMPERE),
        GPUSpec("a100-80gb", "NVIDIA A100-SXM4-80GB", 312.0, 80, 2.039, 400, "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB)"),
        GPUSpec("h100-sxm", "NVIDIA H100 80GB HBM3", 989.0, 80, 3.35, 700, "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM)"),
        GPUSpec("h100-pcie", "NVIDIA H100 PCIe", 756.0, 80, 2.0, 350, "NVIDIA H100 Tensor Core GPU datasheet (H100 PCIe)"),
        GPUSpec("h200", "NVIDIA H200", 989.0, 141, 4.8, 700, "NVIDIA H200 Tensor Core GPU datasheet (H200 SXM)"),
        GPUSpec("l40s", "NVIDIA L40S", 362.0, 48, 0.864, 350, "NVIDIA L40S datasheet"),
        GPUSpec("b200", "NVIDIA B200", 2250.0, 180, 7.7, 1000, "NVIDIA HGX B200 datasheet (per GPU: 36 PFLOPS sparse BF16 / 8 / 2)"),
        GPUSpec("cpu", "CPU", None, 0, None, None, "measured: timed FP32 matmul (measure_cpu_peak_flops)"),
    ]
}

ALIASES: dict[str, str] = {
    "h100": "h100-sxm",
    "h100-80gb": "h100-sxm",
    "a100": "a100-80gb",
    "rtx-6000-pro": "rtx-pro-6000",
    "rtx-pro-6000-blackwell": "rtx-pro-6000",
    "pro-6000": "rtx-pro-6000",
    "5090": "rtx-5090",
    "4090": "rtx-4090",
    "3090": "rtx-3090",
}


def _normalise(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def get_gpu(name: str) -> GPUSpec:
    """The spec for a key or alias (case and spaces do not matter); a BookmixError listing the choices otherwise."""
    key = _normalise(name)
    key = ALIASES.get(key, key)
    if key in GPUS:
        return GPUS[key]
    if key.startswith("cuda:"):  # a generic key from detect_device(): no datasheet figures, memory from the driver
        return GPUSpec(key, name[5:], None, _cuda_memory_gb(), None, None, "unknown GPU: calibrate with `bookmix bench`")
    raise BookmixError(f"--gpu: unknown device {name!r}; choose one of {', '.join(GPUS)} (aliases: {', '.join(ALIASES)})")


def _cuda_memory_gb() -> float:
    """Memory of the first CUDA GPU as the driver reports it; 0 where there is none."""
    try:
        import torch

        return torch.cuda.get_device_properties(0).total_memory / 1e9 if torch.cuda.is_available() else 0.0
    except Exception:  # pragma: no cover - a broken driver reads as no GPU
        return 0.0


# Substrings of torch.cuda.get_device_name() → key, most specific first ("H100 PCIe" before "H100").
_NAME_PATTERNS: list[tuple[str, str]] = [
    ("rtx pro 6000", "rtx-pro-6000"),
    ("rtx 5090", "rtx-5090"),
    ("rtx 4090", "rtx-4090"),
    ("rtx 3090", "rtx-3090"),
    ("a100", "a100-80gb"),
    ("h100 pcie", "h100-pcie"),
    ("h100", "h100-sxm"),
    ("h200", "h200"),
    ("l40s", "l40s"),
    ("b200", "b200"),
]


def device_key(cuda_name: str) -> str:
    """Map a CUDA device name onto a table key; an unknown GPU becomes ``cuda:<name>`` so calibrations still key on it."""
    low = cuda_name.lower()
    for pattern, key in _NAME_PATTERNS:
        if pattern in low:
            return key
    return "cuda:" + _normalise(cuda_name)


def detect_device() -> str:
    """The key of the device training would run on: the first CUDA GPU, else ``cpu``."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return "cpu"
    if not torch.cuda.is_available():
        return "cpu"
    return device_key(torch.cuda.get_device_name(0))


@functools.lru_cache(maxsize=4)
def measure_cpu_peak_flops(seconds: float = 1.0, n: int = 1024) -> float:
    """FP32 matmul FLOP/s of this CPU with torch's current thread count: the 100% against which CPU MFU is read.

    A square n×n matmul is as close to peak as torch gets on a CPU; we keep the best of several repetitions so a
    noisy neighbour lowers the figure less. Cached per process: it costs about ``seconds``.
    """
    import torch

    a = torch.randn(n, n)
    b = torch.randn(n, n)
    torch.mm(a, b)  # warm-up: thread pool, caches
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        dt = time.perf_counter() - t0
        best = max(best, 4 * 2 * n**3 / dt)
    return best


def cpu_memory_bytes() -> int:
    """Physical memory of this machine (the CPU 'device memory')."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 * 10**9


def peak_flops(device: str | GPUSpec) -> float:
    """Peak FLOP/s of a device: the table's figure, or measured for the CPU; BookmixError for an unknown GPU."""
    spec = device if isinstance(device, GPUSpec) else get_gpu(device)
    if spec.peak_flops is not None:
        return spec.peak_flops
    if spec.key == "cpu":
        return measure_cpu_peak_flops()
    raise BookmixError(f"--gpu: no peak FLOP/s known for {spec.name!r}; run `bookmix bench` on it to calibrate")
