from __future__ import annotations

import json

import pytest

from bookmix.cli import main
from bookmix.forecast.calibration import save_calibration


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["estimate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_is_one_object_with_the_issue_keys(capsys):
    code, out, _ = run(capsys, "--model", "small", "--books", "1", "10", "100", "1000", "--tokens-per-book", "250000",
                       "--epochs", "3", "--gpu", "rtx-pro-6000", "--json")
    assert code == 0
    data = json.loads(out)  # exactly one object: json.loads refuses trailing text
    assert [r["books"] for r in data["rows"]] == [1, 10, 100, 1000]
    for row in data["rows"]:
        assert {"books", "tokens", "flops", "seconds", "memory_bytes", "fits"} <= set(row)
    assert data["rows"][1]["tokens"] == 10 * 250_000 * 3
    assert data["assumptions"]["mfu_source"] == "default" and data["assumptions"]["device"]["key"] == "rtx-pro-6000"


def test_table_says_what_it_assumed(capsys):
    code, out, err = run(capsys, "--model", "nano", "--books", "1,10", "--pages", "500", "--gpu", "h100", "--trials", "100",
                         "--pack", "4")
    assert code == 0 and out == ""  # human output goes to stderr
    for words in ("output head", "MFU", "default", "largest micro-batch", "campaign", "H100"):
        assert words in err


def test_calibration_is_used_and_named(capsys):
    save_calibration({"device": "rtx-4090", "preset": "micro", "seq_len": 256, "tokens_per_s": 4.0e5,
                      "peak_flops": 165.2e12, "micro_batch": 64})
    code, out, _ = run(capsys, "--model", "micro", "--books", "4", "--tokens-per-book", "100000", "--gpu", "rtx-4090",
                       "--json")
    a = json.loads(out)["assumptions"]
    assert code == 0 and a["mfu_source"] == "calibration" and a["tokens_per_s"] == pytest.approx(4.0e5)
    code, out, _ = run(capsys, "--model", "micro", "--books", "4", "--pages", "10", "--gpu", "rtx-4090", "--json",
                       "--no-calibration")
    assert json.loads(out)["assumptions"]["mfu_source"] == "default"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "small", "--books", "-5", "--pages", "500"], "--books: must be ≥ 1"),
        (["--model", "small", "--books", "0", "--pages", "500"], "--books: must be ≥ 1"),
        (["--model", "small", "--books", "1", "--pages", "500", "--gpu", "voodoo"], "choose one of"),
        (["--model", "giant", "--books", "1", "--pages", "500"], "unknown preset"),
        (["--model", "small", "--books", "1", "--pages", "-3"], "--pages"),
        (["--model", "small", "--books", "1"], "--tokens-per-book or --pages"),
        (["--model", "large", "--books", "1", "--pages", "5", "--gpu", "rtx-3090", "--dtype", "fp32"], "does not fit"),
        (["--model", "small", "--books", "1", "--pages", "5", "--gpu", "rtx-4090", "--micro-batch", "999"], "micro-batch"),
        (["--model", "small", "--books", "1", "--pages", "5", "--trials", "0"], "--trials"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, words):
    code, out, err = run(capsys, *args, "--json")
    assert code == 2 and out == ""
    assert words in " ".join(err.split()) and "Traceback" not in err
    assert err.strip().startswith("error:")
