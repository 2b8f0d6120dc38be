from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from bookmix.errors import BookmixError
from bookmix.forecast.calibration import calibration_path, load_calibration, load_calibrations, save_calibration


def record(device="rtx-pro-6000", preset="nano", tokens_per_s=1e6, **extra) -> dict:
    return {
        "device": device,
        "preset": preset,
        "seq_len": 256,
        "micro_batch": 64,
        "dtype": "bf16",
        "tokens_per_s": tokens_per_s,
        "flops_per_s": tokens_per_s * 2.26e7,
        "mfu": tokens_per_s * 2.26e7 / 503.8e12,
        "peak_flops": 503.8e12,
        "compile": True,
        "torch_version": "2.13.0",
        **extra,
    }


def test_round_trip_in_bookmix_home(bookmix_home):
    assert load_calibration("rtx-pro-6000", "nano") is None
    path = save_calibration(record())
    assert path == bookmix_home / "calibration.json" == calibration_path()
    got = load_calibration("rtx-pro-6000", "nano")
    assert got["tokens_per_s"] == 1e6 and got["measured_at"]
    assert load_calibration("rtx-pro-6000", "micro") is None
    assert load_calibration("h100-sxm", "nano") is None
    assert [p.name for p in bookmix_home.iterdir() if p.name.endswith(".tmp")] == []  # atomic: no temp left


def test_records_are_keyed_by_device_and_preset_and_merge():
    save_calibration(record(preset="nano", measured_at="2026-01-01T00:00:00Z"))
    save_calibration(record(preset="micro", tokens_per_s=2e5, measured_at="2026-02-01T00:00:00Z"))
    save_calibration(record(device="cpu", preset="nano", tokens_per_s=700.0))
    # the packed bench adds its own figure without erasing the single-model one
    save_calibration({"device": "rtx-pro-6000", "preset": "nano", "pack": 8, "pack_speedup": 5.5,
                      "measured_at": "2026-01-15T00:00:00Z"})
    nano = load_calibration("rtx-pro-6000", "nano")
    assert nano["pack_speedup"] == 5.5 and nano["tokens_per_s"] == 1e6
    assert load_calibration("rtx-pro-6000")["preset"] == "micro"  # the device's most recent record
    assert load_calibration("cpu", "nano")["tokens_per_s"] == 700.0
    assert len(load_calibrations()) == 3 and len(load_calibrations("cpu")) == 1


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"device": ""}, "device"), ({"tokens_per_s": -5}, "tokens_per_s"), ({"mfu": 3.0}, "mfu"),
     ({"flops_per_s": float("nan")}, "flops_per_s"), ({"preset": None}, "preset")],
)
def test_bad_records_are_refused(bad, field):
    with pytest.raises(BookmixError, match=field):
        save_calibration(record() | bad)
    assert not calibration_path().exists()


def test_a_corrupt_file_is_a_clear_error(bookmix_home):
    bookmix_home.mkdir(parents=True)
    calibration_path().write_text("{not json")
    with pytest.raises(BookmixError, match="calibration.json"):
        load_calibration("cpu", "nano")
    calibration_path().write_text(json.dumps({"records": []}))
    with pytest.raises(BookmixError, match="records"):
        load_calibration("cpu", "nano")


def _save_many(preset: str) -> None:
    for i in range(15):
        save_calibration(record(preset=f"{preset}-{i}"))


def test_concurrent_benches_lose_nothing():
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_save_many, args=(name,)) for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(load_calibrations("rtx-pro-6000")) == 30
