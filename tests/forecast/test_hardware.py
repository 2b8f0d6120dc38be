from __future__ import annotations

import pytest

from bookmix.errors import BookmixError
from bookmix.forecast.hardware import GPUS, detect_device, device_key, get_gpu, measure_cpu_peak_flops, peak_flops

# The figures the issue asks for: dense BF16 TFLOP/s with FP32 accumulation.
ISSUE_PEAKS = {
    "rtx-pro-6000": 503.8,
    "rtx-5090": 209.5,
    "rtx-4090": 165.2,
    "rtx-3090": 71.0,
    "a100-80gb": 312.0,
    "h100-sxm": 989.0,
    "h100-pcie": 756.0,
    "h200": 989.0,
    "l40s": 362.0,
    "b200": 2250.0,
}


def test_table_holds_the_issue_devices_with_sources():
    for key, tflops in ISSUE_PEAKS.items():
        spec = GPUS[key]
        assert spec.key == key
        assert spec.bf16_tflops == tflops
        assert spec.peak_flops == pytest.approx(tflops * 1e12)
        assert spec.memory_gb > 0 and spec.bandwidth_tbs and spec.tdp_w and spec.source
    assert GPUS["rtx-pro-6000"].memory_gb == 96 and GPUS["rtx-pro-6000"].bandwidth_tbs == pytest.approx(1.79, abs=0.01)
    assert GPUS["h200"].memory_gb == 141
    assert GPUS["cpu"].bf16_tflops is None  # measured, not looked up


def test_aliases_and_spelling():
    assert get_gpu("h100").key == "h100-sxm"
    assert get_gpu("RTX PRO 6000").key == "rtx-pro-6000"
    assert get_gpu("rtx_4090").key == "rtx-4090"


def test_unknown_gpu_lists_the_choices():
    with pytest.raises(BookmixError) as err:
        get_gpu("voodoo-5")
    msg = str(err.value)
    assert "voodoo-5" in msg and "rtx-pro-6000" in msg and "h100-sxm" in msg and "cpu" in msg


def test_cuda_names_map_onto_keys():
    assert device_key("NVIDIA RTX PRO 6000 Blackwell Workstation Edition") == "rtx-pro-6000"
    assert device_key("NVIDIA H100 PCIe") == "h100-pcie"
    assert device_key("NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert device_key("NVIDIA A100-SXM4-80GB") == "a100-80gb"
    assert device_key("NVIDIA GeForce RTX 4090") == "rtx-4090"
    generic = device_key("NVIDIA Tesla T4")
    assert generic == "cuda:nvidia-tesla-t4"
    spec = get_gpu(generic)  # a generic key is a valid device with no datasheet peak
    assert spec.peak_flops is None
    with pytest.raises(BookmixError, match="bookmix bench"):
        peak_flops(spec)


def test_detect_device_without_cuda_is_cpu():
    import torch

    if torch.cuda.is_available():  # pragma: no cover - GPU machines
        assert detect_device() in GPUS or detect_device().startswith("cuda:")
    else:
        assert detect_device() == "cpu"


def test_cpu_peak_is_measured_and_cached():
    first = measure_cpu_peak_flops(seconds=0.2, n=256)
    assert 1e8 < first < 1e14  # any real CPU: between 0.1 GFLOP/s and 100 TFLOP/s
    assert measure_cpu_peak_flops(seconds=0.2, n=256) == first  # cached: the very same figure
