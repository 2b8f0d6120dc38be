"""Fine-tune (a Hugging Face base, LoRA) and chat SFT run in the training engine like every trainer: a non-finite loss
stops the run before any checkpoint can hold NaN weights, an out-of-memory error halves the micro-batch and keeps the
step, and both leave their events in events.jsonl (the fault injector of training/faults.py stands in for the GPU)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from bookmix.recipes import Recipe
from bookmix.recipes.heldout import holdout_windows
from bookmix.training.checkpoint import read_checkpoint
from bookmix.training.config import SFTConfig, TrainConfig
from bookmix.training.faults import FaultInjector
from bookmix.training.finetune import FinetuneConfig, finetune
from bookmix.training.sft import sft

from .test_finetune import tiny_llama

FT_TRAIN = TrainConfig(micro_batch=8, lr=1e-2, warmup=2, log_every=50, checkpoint_every=2, checkpoint_seconds=0)
"""Logs only at the end: a NaN between logs must still be caught before the checkpoint of the next even step."""


def _events(out) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _all_finite(out) -> bool:
    return all(torch.isfinite(w).all() for w in load_file(out / "checkpoint" / "model.safetensors").values())


@pytest.fixture(scope="module")
def base(world, tmp_path_factory):
    return tiny_llama(
        tmp_path_factory.mktemp("hf") / "base", world.library.vocab_size, world.library.path / "tokenizer.json"
    )


def _finetune(world, base, out, cfg=FT_TRAIN, **kw):
    recipe = Recipe.from_dict({"books": [b.id for b in world.library.books(split="train")][:4], "epochs": 1})
    return finetune(
        FinetuneConfig(base=base, method="lora", lora_r=4),
        cfg,
        recipe.stream(world.library, 64),
        out,
        heldout=holdout_windows(world.library, 64, cfg.eval_windows),
        **kw,
    )


@pytest.fixture(scope="module")
def ft_oom(world, base, tmp_path_factory):
    root = tmp_path_factory.mktemp("ft_oom")
    logs: list[dict] = []
    clean = _finetune(world, base, root / "clean")
    backed = _finetune(world, base, root / "oom", faults=FaultInjector(oom_above_micro_batch=3), on_log=logs.append)
    return clean, backed, root / "oom", logs


def test_finetune_stops_on_divergence_and_never_saves_nan_weights(world, base, tmp_path):
    result = _finetune(world, base, tmp_path, faults=FaultInjector(nan_at_step=3))
    assert result.status == "diverged" and result.diverged_at_step == 3 and result.steps == 3
    assert read_checkpoint(tmp_path).state["step"] == 2  # the checkpoint of step 4 would hold NaN weights
    assert _all_finite(tmp_path)
    assert _events(tmp_path) == [{"event": "diverged", "step": 3, "checkpoint_step": 2}]
    assert not (tmp_path / "hf").exists()  # nothing exported from a diverged run
    assert _finetune(world, base, tmp_path) == result  # finished: the verdict stands


def test_finetune_backs_off_on_out_of_memory_and_keeps_the_step(ft_oom):
    clean, backed, out, _ = ft_oom
    assert backed.status == clean.status == "completed" and backed.micro_batch == 2
    assert backed.steps == clean.steps and backed.tokens == clean.tokens
    assert backed.final_loss == pytest.approx(clean.final_loss, rel=1e-4)  # same steps, summed in another order
    assert backed.heldout_loss == pytest.approx(clean.heldout_loss, rel=1e-4)
    assert read_checkpoint(out).state["micro_batch"] == 2 and (out / "hf" / "config.json").is_file()


def test_finetune_writes_its_events(ft_oom):
    _, _, out, logs = ft_oom
    events = _events(out)
    assert [(e["event"], e["micro_batch"], e["grad_accum"]) for e in events] == [
        ("oom_backoff", 4, 2),
        ("oom_backoff", 2, 4),
    ]
    assert [e for e in logs if e.get("event") not in (None, "start")] == events  # the caller sees them too
    assert [e["event"] for e in logs if "event" in e][0] == "start"


def _sft_cfg(**train) -> SFTConfig:
    return SFTConfig(
        epochs=1,
        train=TrainConfig(micro_batch=16, lr=3e-3, warmup=0.05, weight_decay=0.0, checkpoint_seconds=0, **train),
    )


@pytest.fixture(scope="module")
def sft_oom(world, tmp_path_factory):
    root = tmp_path_factory.mktemp("sft_oom")
    logs: list[dict] = []
    clean = sft(world.base, world.chat, world.library.path, root / "clean", _sft_cfg(), export=False)
    backed = sft(
        world.base,
        world.chat,
        world.library.path,
        root / "oom",
        _sft_cfg(),
        export=False,
        faults=FaultInjector(oom_above_micro_batch=5),
        on_log=logs.append,
    )
    return clean, backed, root / "oom", logs


def test_sft_stops_on_divergence_and_never_saves_nan_weights(world, tmp_path):
    cfg = _sft_cfg(log_every=50, checkpoint_every=2)
    result = sft(world.base, world.chat, world.library.path, tmp_path, cfg, faults=FaultInjector(nan_at_step=3))
    assert result.status == "diverged" and result.diverged_at_step == 3 and result.steps == 3
    assert read_checkpoint(tmp_path).state["step"] == 2
    assert _all_finite(tmp_path)
    assert _events(tmp_path) == [{"event": "diverged", "step": 3, "checkpoint_step": 2}]
    assert result.objective is None and not (tmp_path / "hf").exists()  # no eval, no export of a diverged layer


def test_sft_backs_off_on_out_of_memory_and_keeps_the_step(sft_oom):
    clean, backed, out, _ = sft_oom
    assert backed.status == clean.status == "completed"
    assert backed.steps == clean.steps and backed.assistant_tokens == clean.assistant_tokens
    assert backed.heldout_loss_after == pytest.approx(clean.heldout_loss_after, rel=1e-4)
    assert read_checkpoint(out).state["micro_batch"] == 4  # a resume keeps the smaller split


def test_sft_writes_its_events(sft_oom):
    _, _, out, logs = sft_oom
    events = _events(out)
    assert [(e["event"], e["micro_batch"], e["grad_accum"]) for e in events] == [
        ("oom_backoff", 8, 2),
        ("oom_backoff", 4, 4),
    ]
    assert [e for e in logs if e.get("event") not in (None, "start")] == events
