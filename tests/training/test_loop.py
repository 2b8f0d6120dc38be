"""The trainer on a toy stream: the loss falls, the curve and checkpoint are written, finished runs are not redone."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from bookmix.errors import BookmixError
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.checkpoint import load_model
from bookmix.training.config import TrainConfig
from bookmix.training.curve import read_curve
from bookmix.training.loop import plan_run, train

from .toy import TOY, pattern_stream, pattern_tokens

FAST = TrainConfig(micro_batch=8, lr=3e-3, warmup=5, log_every=5, checkpoint_every=20, eval_every=20, device="cpu")


def test_loss_falls_on_a_repeated_pattern_and_files_are_written(tmp_path):
    held = ArrayWindows(pattern_tokens(3000, seed=0), 32)
    logs = []
    result = train(TOY, FAST, pattern_stream(), tmp_path, heldout=held, on_log=logs.append, meta={"recipe": {"id": "r1"}})

    assert result.status == "completed" and result.diverged_at_step is None
    assert result.steps == 78 and result.tokens == 624 * 32  # 624 windows, 8 per step
    curve = read_curve(tmp_path / "curve.jsonl")
    assert [r["step"] for r in curve] == [*range(5, 78, 5), 78]
    assert curve[0]["loss"] > 3.0  # ~ln(64) = 4.16 at the start
    assert result.final_loss < 1.2 and result.final_loss == curve[-1]["loss"]
    assert result.heldout_loss < 1.2 and result.heldout_loss == curve[-1]["heldout_loss"]
    assert [r["step"] for r in curve if "heldout_loss" in r] == [20, 40, 60, 78]
    assert all({"tokens", "lr", "grad_norm", "tokens_per_s"} <= set(r) for r in curve)
    assert [r for r in logs if "event" not in r] == curve
    assert logs[0]["event"] == "start" and logs[0]["total_steps"] == 78

    config = json.loads((tmp_path / "checkpoint" / "config.json").read_text())
    assert config["meta"] == {"recipe": {"id": "r1"}}
    assert config["train"]["lr"] == 3e-3 and config["model"]["vocab_size"] == 64
    model, cfg, meta = load_model(tmp_path)
    assert cfg == TOY and meta["recipe"]["id"] == "r1"
    idx = torch.from_numpy(pattern_tokens(33).astype(np.int64))[None]
    _, loss = model(idx[:, :-1], idx[:, 1:])
    assert loss.item() < 1.5


def test_finished_run_returns_its_stored_result(tmp_path):
    first = train(TOY, FAST, pattern_stream(4000), tmp_path)
    weights = (tmp_path / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    again = train(TOY, FAST, pattern_stream(4000), tmp_path)
    assert again == first
    assert (tmp_path / "checkpoint" / "model.safetensors").stat().st_mtime_ns == weights


def test_max_tokens_caps_the_run(tmp_path):
    cfg = FAST.model_copy(update={"max_tokens": 32 * 40})
    result = train(TOY, cfg, pattern_stream(), tmp_path)
    assert result.tokens == 32 * 40 and result.steps == 5
    assert plan_run(TOY.block_size, cfg, pattern_stream()).total_steps == 5


def test_accumulation_matches_one_big_batch(tmp_path):
    stream = pattern_stream(6000)
    big = train(TOY, FAST.model_copy(update={"micro_batch": 8, "grad_accum": 1}), stream, tmp_path / "a")
    acc = train(TOY, FAST.model_copy(update={"micro_batch": 2, "grad_accum": 4}), stream, tmp_path / "b")
    assert big.steps == acc.steps
    assert acc.final_loss == pytest.approx(big.final_loss, rel=1e-4)


@pytest.mark.parametrize("schedule", ["wsd", "constant"])
def test_other_schedules_train(tmp_path, schedule):
    result = train(TOY, FAST.model_copy(update={"schedule": schedule}), pattern_stream(8000), tmp_path)
    curve = read_curve(tmp_path / "curve.jsonl")
    assert result.final_loss < curve[0]["loss"] - 0.5
    if schedule == "constant":
        assert {r["lr"] for r in curve} == {3e-3}


def test_tokens_outside_the_vocabulary_are_a_clear_error(tmp_path):
    tokens = pattern_tokens(2000).astype(np.int64)
    tokens[500] = 64
    with pytest.raises(BookmixError, match="vocabulary of 64"):
        train(TOY, FAST, ArrayWindows(tokens, 32), tmp_path)


def test_stream_longer_than_the_context_is_refused(tmp_path):
    with pytest.raises(BookmixError, match="block_size 32"):
        train(TOY, FAST, ArrayWindows(pattern_tokens(2000), 64), tmp_path)
    with pytest.raises(BookmixError, match="no window"):
        train(TOY, FAST, ArrayWindows(pattern_tokens(20), 32), tmp_path)


def test_resume_refuses_a_different_run(tmp_path):
    stop_early = FAST.model_copy(update={"max_tokens": 32 * 200})
    train(TOY, stop_early, pattern_stream(), tmp_path)
    (tmp_path / "result.json").unlink()  # pretend the run was killed after its last checkpoint
    with pytest.raises(BookmixError, match=r"train\.lr"):
        train(TOY, stop_early.model_copy(update={"lr": 1e-3}), pattern_stream(), tmp_path)
    with pytest.raises(BookmixError, match=r"model\.d_model"):
        train(dataclasses.replace(TOY, d_model=64), stop_early, pattern_stream(), tmp_path)
    # Operational settings may change: more frequent logging, another micro-batch split of the same batch.
    result = train(TOY, stop_early.model_copy(update={"log_every": 1, "micro_batch": 4, "grad_accum": 2}), pattern_stream(), tmp_path)
    assert result.status == "completed" and result.steps == 25
