"""The reference-model scoring pass in the forecast: forward-only FLOPs, linear in books, on the device's throughput."""

from __future__ import annotations

import pytest

from bookmix.errors import BookmixError
from bookmix.forecast.forecast import throughput
from bookmix.forecast.hardware import get_gpu
from bookmix.forecast.scoring import scoring_forecast
from bookmix.models.config import preset


def test_scoring_cost_is_a_third_of_training_flops_on_the_same_tokens() -> None:
    cfg = preset("micro")
    one = scoring_forecast(cfg, "h100", books=1000, windows=16)
    assert one.tokens == 1000 * 16 * cfg.block_size
    assert one.flops == pytest.approx(one.tokens * cfg.flops_per_token(cfg.block_size) / 3)
    tp = throughput(cfg, get_gpu("h100"), cfg.block_size)
    assert one.seconds == pytest.approx(one.flops / tp.flops_per_s)
    million = scoring_forecast(cfg, "h100", books=1_000_000, windows=16)
    assert million.seconds == pytest.approx(1000 * one.seconds)
    # a calibrated device is used as measured
    cal = {"flops_per_s": 1e13, "preset": "micro", "device": "h100-sxm"}
    assert scoring_forecast(cfg, "h100", 10, calibration=cal).seconds == pytest.approx(
        10 * 16 * 256 * cfg.flops_per_token(256) / 3 / 1e13
    )
    with pytest.raises(BookmixError, match="must be ≥ 1"):
        scoring_forecast(cfg, "h100", books=0)
