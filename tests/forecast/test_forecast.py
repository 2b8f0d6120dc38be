from __future__ import annotations

import math

import pytest

from bookmix.errors import BookmixError
from bookmix.forecast import Overheads, estimate, tokens_per_book
from bookmix.forecast.defaults import ANALYSIS_FIXED_S, ANALYSIS_PER_TRIAL_S, default_mfu, default_pack_speedup
from bookmix.forecast.hardware import GPUS
from bookmix.models.config import preset

SMALL = preset("small")


def test_rows_follow_the_formula():
    fc = estimate(SMALL, books=[1, 10, 100, 1000], tokens_per_book=250_000, epochs=3, device="rtx-pro-6000")
    fpt = SMALL.flops_per_token(1024)
    peak = GPUS["rtx-pro-6000"].peak_flops
    assert fc.throughput.peak_flops == peak and not fc.throughput.calibrated
    for row, books in zip(fc.rows, [1, 10, 100, 1000], strict=True):
        assert row.books == books and row.tokens == books * 250_000 * 3
        assert row.flops == row.tokens * fpt
        assert row.compute_s == pytest.approx(row.flops / (peak * fc.throughput.mfu))
        assert row.seconds == pytest.approx(row.compute_s + row.startup_s + row.compile_s + row.eval_s + row.checkpoint_s)
        assert row.fits and row.energy_kwh == pytest.approx(600 * row.seconds / 3.6e6)
    # compute is linear in tokens; the fixed overheads are not
    assert fc.rows[3].compute_s == pytest.approx(1000 * fc.rows[0].compute_s)
    assert fc.rows[3].seconds < 1000 * fc.rows[0].seconds
    # the user's question: 1000 books × 3 epochs of a 125M-class model is an hour on this card, not a week
    assert 20 * 60 < fc.rows[3].seconds < 3 * 3600
    assert fc.assumptions["mfu_source"] == "default" and "output head" in fc.assumptions["flops_formula"]
    # checkpoints as the trainer writes them: the final one plus one per 10 minutes of training
    each = fc.assumptions["overheads"]["checkpoint_s_each"]
    assert each == pytest.approx(12 * SMALL.total_params / 1e9 + 0.5)
    assert fc.rows[0].checkpoint_s == pytest.approx(each)
    assert fc.rows[3].checkpoint_s == pytest.approx((1 + fc.rows[3].compute_s // 600) * each)


def test_pages_make_tokens():
    assert tokens_per_book(pages=500) == 250_000
    assert tokens_per_book(pages=500, tokens_per_page=400) == 200_000
    with pytest.raises(BookmixError, match="not both"):
        tokens_per_book(250_000, pages=500)
    with pytest.raises(BookmixError, match="--pages"):
        tokens_per_book(pages=-1)


def test_default_mfu_grows_with_size_and_matches_the_anchors():
    sizes = [preset(n).flops_per_token() for n in ("nano", "micro", "mini", "small", "medium")]
    mfus = [default_mfu(f, "rtx-pro-6000") for f in sizes]
    assert mfus == sorted(mfus) and mfus[0] < 0.05 and 0.3 <= mfus[3] <= 0.4
    assert default_mfu(6 * 1.2e8, "h100-sxm") == pytest.approx(0.35)


def test_a_calibration_replaces_the_default():
    cfg = preset("nano")
    fpt = cfg.flops_per_token(256)
    cal = {"device": "rtx-pro-6000", "preset": "nano", "seq_len": 256, "tokens_per_s": 2e6, "peak_flops": 503.8e12}
    fc = estimate(cfg, books=[10], device="rtx-pro-6000", calibration=cal)
    assert fc.throughput.calibrated and fc.assumptions["mfu_source"] == "calibration"
    assert fc.throughput.flops_per_s == pytest.approx(2e6 * fpt)
    assert fc.rows[0].compute_s == pytest.approx(10 * 250_000 / 2e6)
    assert "calibration of nano" in fc.assumptions["throughput_source"]
    # another preset's calibration: its device efficiency, rescaled by the default MFU ratio of the two sizes
    small = estimate(SMALL, books=[10], calibration=cal)
    ratio = default_mfu(SMALL.flops_per_token(), "rtx-pro-6000") / default_mfu(fpt, "rtx-pro-6000")
    assert small.throughput.flops_per_s == pytest.approx(2e6 * fpt * ratio)
    assert "scaled" in small.assumptions["throughput_source"]
    # the calibration's compile setting carries over: a rate measured without torch.compile pays no compile time
    assert fc.assumptions["overheads"]["compile"] is True  # not recorded: the GPU default
    uncompiled = estimate(cfg, books=[10], device="rtx-pro-6000", calibration=cal | {"compile": False})
    assert uncompiled.rows[0].compile_s == 0 and uncompiled.assumptions["overheads"]["compile"] is False
    forced = estimate(cfg, books=[10], calibration=cal | {"compile": False}, overheads=Overheads(compile=True))
    assert forced.rows[0].compile_s > 0


def test_campaign_packs_and_spreads_over_gpus():
    cfg = preset("nano")
    o = Overheads(startup_s=10, compile=True, compile_s=30, evals=0, checkpoints=0)
    one = estimate(cfg, books=[100], overheads=o)
    camp = estimate(cfg, books=[100], trials=1000, pack=8, gpus=2, verify_trials=0, overheads=o)
    row, single = camp.rows[0], one.rows[0]
    s = camp.assumptions["pack_speedup"]
    assert s == pytest.approx(default_pack_speedup(8, one.throughput.mfu)) and 1 < s <= 8
    pack_s = 10 + 30 / 3 + 8 * single.compute_s / s  # warm compile cache after each GPU's first pack
    analysis_s = ANALYSIS_FIXED_S + ANALYSIS_PER_TRIAL_S * 1000
    assert row.campaign_seconds == pytest.approx(math.ceil(125 / 2) * pack_s + 20 + analysis_s)
    assert row.campaign_flops == pytest.approx(1000 * single.flops)
    # memory of a pack: eight models' tensors, one CUDA context
    assert row.memory_bytes > 7 * (single.memory_bytes - 2**30)
    # a measured pack speed-up wins over the default
    cal = {"device": "rtx-pro-6000", "preset": "nano", "tokens_per_s": 1e6, "pack": 8, "pack_speedup": 3.0}
    assert estimate(cfg, books=[100], trials=16, pack=8, calibration=cal).assumptions["pack_speedup"] == 3.0


def test_a_big_model_packs_to_no_gain():
    assert default_pack_speedup(4, 0.40) == 1.0
    assert default_pack_speedup(1, 0.01) == 1.0


def test_fit_and_micro_batch():
    fc = estimate(preset("large"), books=[1], device="rtx-3090")
    assert fc.max_micro_batch <= 2 and fc.memory.micro_batch == max(1, fc.max_micro_batch)
    assert not estimate(preset("small"), books=[1], device="rtx-4090", micro_batch=512).rows[0].fits
    big = estimate(preset("large"), books=[1], device="rtx-3090", dtype="fp32", micro_batch=1)
    assert big.max_micro_batch == 0 and not big.rows[0].fits


def test_cpu_uses_the_measured_peak():
    fc = estimate(preset("nano"), books=[1], device="cpu", peak_flops=5e10)
    assert fc.throughput.peak_flops == 5e10 and fc.rows[0].energy_kwh is None
    assert fc.assumptions["overheads"]["compile"] is False


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"books": [-1]}, "--books"), ({"books": [0]}, "--books"), ({"epochs": 0}, "--epochs"), ({"gpus": 0}, "--gpus"),
     ({"pack": -2}, "--pack"), ({"trials": 0}, "--trials"), ({"tokens_per_book": 0}, "--tokens-per-book"),
     ({"device": "tpu-v9"}, "--gpu"), ({"books": []}, "--books"), ({"micro_batch": 0}, "--micro-batch")],
)
def test_bad_input_names_the_flag(kwargs, field):
    with pytest.raises(BookmixError, match=field):
        estimate(preset("nano"), **({"books": [1]} | kwargs))


def test_the_forecast_needs_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; from bookmix.forecast import estimate; from bookmix.models.config import preset; "
        "estimate(preset('small'), books=[1, 10], trials=5, pack=2); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
