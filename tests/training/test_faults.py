"""Faults: a NaN loss stops the run as diverged; out-of-memory halves the micro-batch; too big a model fails early."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from bookmix.errors import BookmixError
from bookmix.models.config import preset
from bookmix.training.checkpoint import read_checkpoint
from bookmix.training.config import TrainConfig
from bookmix.training.device import fit_micro_batch
from bookmix.training.faults import FaultInjector
from bookmix.training.loop import train

from .toy import TOY, pattern_stream

CFG = TrainConfig(micro_batch=8, lr=3e-3, warmup=5, log_every=10, checkpoint_every=5, device="cpu")


def _events(out) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_nan_loss_marks_the_run_diverged_and_keeps_the_last_good_checkpoint(tmp_path):
    result = train(TOY, CFG, pattern_stream(), tmp_path, faults=FaultInjector(nan_at_step=13))
    assert result.status == "diverged"
    assert result.diverged_at_step == 13 and result.steps == 13
    assert result.final_loss is not None and math.isfinite(result.final_loss)
    ckpt = read_checkpoint(tmp_path)
    assert ckpt.state["step"] == 10  # checkpoints at 5 and 10; the one at 15 would hold NaN weights and is not written
    weights = load_file(tmp_path / "checkpoint" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert [e["event"] for e in _events(tmp_path)] == ["diverged"]
    # A diverged run is finished: running it again returns the same verdict without training.
    assert train(TOY, CFG, pattern_stream(), tmp_path) == result


def test_nan_is_caught_between_logs_too(tmp_path):
    cfg = CFG.model_copy(update={"log_every": 50, "checkpoint_every": 0, "checkpoint_seconds": 0})
    result = train(TOY, cfg, pattern_stream(), tmp_path, faults=FaultInjector(nan_at_step=3))
    assert result.status == "diverged" and result.diverged_at_step == 3
    assert read_checkpoint(tmp_path) is None  # none was due before the divergence


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_effective_batch(tmp_path):
    stream = pattern_stream(6000)
    clean = train(TOY, CFG, stream, tmp_path / "clean")
    logs: list[dict] = []
    backed = train(TOY, CFG, stream, tmp_path / "oom", on_log=logs.append, faults=FaultInjector(oom_above_micro_batch=3))
    assert backed.status == "completed" and backed.micro_batch == 2
    events = [e for e in _events(tmp_path / "oom") if e["event"] == "oom_backoff"]
    assert [(e["micro_batch"], e["grad_accum"]) for e in events] == [(4, 2), (2, 4)]
    assert [e for e in logs if e.get("event") == "oom_backoff"] == events
    assert backed.steps == clean.steps and backed.tokens == clean.tokens
    assert backed.final_loss == pytest.approx(clean.final_loss, rel=1e-4)  # same steps, summed in another order
    assert read_checkpoint(tmp_path / "oom").state["micro_batch"] == 2  # a resume keeps the smaller split


def test_out_of_memory_at_micro_batch_one_is_a_clear_error(tmp_path):
    with pytest.raises(BookmixError, match="micro-batch 1"):
        train(TOY, CFG, pattern_stream(3000), tmp_path, faults=FaultInjector(oom_above_micro_batch=0))


def test_memory_estimate_shrinks_the_micro_batch_or_refuses_the_model():
    cfg = preset("small", vocab_size=16384)
    big = 80 * 10**9
    assert fit_micro_batch(cfg, 16, 1024, torch.bfloat16, big) == 16
    assert fit_micro_batch(cfg, 64, 1024, torch.bfloat16, 12 * 10**9) < 64
    with pytest.raises(BookmixError, match=r"'large'.*micro-batch 1.*GiB"):
        fit_micro_batch(preset("large", vocab_size=16384), 8, 2048, torch.bfloat16, 8 * 10**9)
