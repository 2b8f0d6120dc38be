"""The forecast: time, memory and FLOPs of a training run or a campaign on a device, calibrated by measurement.

    from bookmix.forecast import estimate
    fc = estimate(preset("small"), books=[1, 10, 100, 1000], tokens_per_book=250_000, epochs=3, device="rtx-pro-6000")

Files, in dependency order: ``hardware`` (the device table, detection, the CPU's measured peak), ``memory`` (bytes
of one training step), ``calibration`` (measured throughput on disk), ``defaults`` (MFU by size, packing,
overheads: what is assumed when nothing is measured), ``forecast`` (the pure function that puts them together).
No torch is imported except to detect the device or measure the CPU.
"""

from bookmix.forecast.calibration import load_calibration, save_calibration
from bookmix.forecast.defaults import Overheads
from bookmix.forecast.forecast import Forecast, ForecastRow, Throughput, estimate, tokens_per_book
from bookmix.forecast.hardware import GPUS, GPUSpec, detect_device, get_gpu, measure_cpu_peak_flops
from bookmix.forecast.memory import MemoryEstimate, estimate_memory, max_micro_batch

__all__ = [
    "GPUS",
    "Forecast",
    "ForecastRow",
    "GPUSpec",
    "MemoryEstimate",
    "Overheads",
    "Throughput",
    "detect_device",
    "estimate",
    "estimate_memory",
    "get_gpu",
    "load_calibration",
    "max_micro_batch",
    "measure_cpu_peak_flops",
    "save_calibration",
    "tokens_per_book",
]
