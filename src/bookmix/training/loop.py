"""The single-model trainer: one model, one stream of windows, from scratch (or from its checkpoint) to the end.
The run itself (cadence, checkpoints, divergence, out-of-memory backoff, events, result) is the engine's
(engine.py); here are the plan of a window run and :class:`ModelStepper`, the stepper of one torch model that the
fine-tune and SFT trainers use too.

    result = train(model_cfg, train_cfg, stream, out_dir, heldout=None)

Step ``s`` (0-based) trains on windows ``s·E .. (s+1)·E`` of the stream, E = micro_batch × grad_accum; the last step
takes what is left. Because the data position is just the step, the learning-rate schedule is a pure function of
the step, and the checkpoint holds weights, AdamW state and RNG states, a run killed at any moment and resumed
computes exactly what an uninterrupted run computes (bit for bit on CPU in fp32).

Files in ``out_dir``: ``checkpoint/`` (see checkpoint.py), ``curve.jsonl`` (see curve.py), ``events.jsonl``
(out-of-memory backoffs, divergence), and ``result.json`` once the run has finished; a finished run is not
trained again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.models.model import LM
from bookmix.recipes.stream import WindowSource
from bookmix.training.checkpoint import Checkpoint, restore_training_state, save_checkpoint
from bookmix.training.config import TrainConfig
from bookmix.training.device import compute_dtype, enable_fast_math, fit_micro_batch, memory_bytes, resolve_device
from bookmix.training.engine import Batch, LogFn, Run, open_run, train_runs
from bookmix.training.evaluate import heldout_loss, sample_windows
from bookmix.training.faults import FaultInjector
from bookmix.training.result import TrainResult
from bookmix.training.step import make_optimizer, train_step

__all__ = ["ModelStepper", "RunPlan", "TrainResult", "open_window_run", "plan_run", "train"]


@dataclass(frozen=True)
class RunPlan:
    """The shape of a run, fixed before the first step."""

    seq_len: int
    n_windows: int
    """Windows trained: the whole stream, or fewer when max_tokens caps it."""
    windows_per_step: int
    total_steps: int


def plan_run(block_size: int, train_cfg: TrainConfig, stream: WindowSource) -> RunPlan:
    """The plan of a window run on a model of context ``block_size``."""
    seq_len, n = int(stream.seq_len), int(stream.n_windows)
    if seq_len > block_size:
        raise BookmixError(f"stream: seq_len {seq_len} exceeds the model's block_size {block_size}")
    if train_cfg.max_tokens is not None:
        n = min(n, train_cfg.max_tokens // seq_len)
    if n < 1:
        raise BookmixError(f"stream: no window of {seq_len + 1} tokens to train on (max_tokens {train_cfg.max_tokens})")
    e = train_cfg.windows_per_step
    return RunPlan(seq_len=seq_len, n_windows=n, windows_per_step=e, total_steps=math.ceil(n / e))


def open_window_run(head: dict, block_size: int, train_cfg: TrainConfig, stream: WindowSource, out_dir: str | Path,
                    heldout: WindowSource | None, vocab_size: int, meta: dict | None = None, on_log: LogFn | None = None,
                    held: np.ndarray | None = None) -> Run:
    """A run over the windows of ``stream`` (see engine.open_run): planned, its batches and held-out windows attached.
    ``head`` names the model in the stored config ({"model": ...}, or {"finetune": ...} for a Hugging Face base);
    ``held`` gives the held-out windows already sampled (a pack shares one sample)."""
    plan = plan_run(block_size, train_cfg, stream)
    config = {
        **head,
        "train": train_cfg.model_dump(mode="json"),
        "stream": {"seq_len": plan.seq_len, "n_windows": plan.n_windows, "stream_windows": int(stream.n_windows)},
        "total_steps": plan.total_steps,
        "meta": dict(meta or {}),
        "torch": torch.__version__,
    }
    run = open_run(out_dir, config, train_cfg, plan.total_steps, resume=(*head, "stream"), on_log=on_log)
    run.batches = window_batches(stream, plan, vocab_size)
    if held is None and heldout is not None:
        held = sample_windows(heldout, train_cfg.eval_windows)
    if held is not None and held.shape[1] - 1 > block_size:
        raise BookmixError(f"heldout: seq_len {held.shape[1] - 1} exceeds the model's block_size {block_size}")
    run.held = held
    return run


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    stream: WindowSource,
    out_dir: str | Path,
    heldout: WindowSource | None = None,
    device: str | torch.device | None = None,
    on_log: LogFn | None = None,
    meta: dict | None = None,
    faults: FaultInjector | None = None,
) -> TrainResult:
    """Train (or resume, or return the stored result of) the run in ``out_dir``. See the module docstring.

    ``on_log`` gets every curve record (step, tokens, loss, lr, grad_norm, tokens_per_s[, heldout_loss]) and events
    (a dict with an ``event`` key: start, oom_backoff, diverged). ``meta`` is stored in the checkpoint's config.json
    (the recipe, the trial id ...). ``faults`` injects simulated faults (tests only).
    """
    run = open_window_run({"model": model_cfg.to_dict()}, model_cfg.block_size, train_cfg, stream, out_dir, heldout,
                          model_cfg.vocab_size, meta, on_log)
    if run.result is not None:
        return run.result
    dev = resolve_device(device if device is not None else train_cfg.device)
    dtype = compute_dtype(dev, train_cfg.dtype)
    enable_fast_math(dev)
    torch.manual_seed(train_cfg.seed)
    model = LM(model_cfg, seed=train_cfg.seed).to(dev)

    def fit(micro_batch: int) -> int:
        return fit_micro_batch(model_cfg, micro_batch, int(stream.seq_len), dtype, memory_bytes(dev))

    stepper = ModelStepper(model, train_cfg, dev, dtype, name=f"model {model_cfg.name!r}", fit=fit, faults=faults,
                           checkpoint=run.checkpoint)
    return train_runs(stepper, [run], dev)[0]


def window_batches(stream: WindowSource, plan: RunPlan, vocab_size: int) -> Callable[[int], Batch]:
    """Step ``s`` trains windows ``s·E .. (s+1)·E`` of the stream (the last step what is left)."""

    def batch(step: int) -> Batch:
        lo = step * plan.windows_per_step
        hi = min(lo + plan.windows_per_step, plan.n_windows)
        return load_windows(stream, lo, hi, vocab_size), None, (hi - lo) * plan.seq_len

    return batch


def load_windows(stream: WindowSource, lo: int, hi: int, vocab_size: int) -> torch.Tensor:
    """Windows lo..hi as an int64 tensor, (n, T+1); ids outside the vocabulary are a clear error, not a CUDA assert."""
    arr = np.asarray(stream.windows(lo, hi))
    top = int(arr.max())
    if top >= vocab_size or (arr.dtype.kind == "i" and int(arr.min()) < 0):
        raise BookmixError(f"stream: windows {lo}:{hi} hold token id {top} (or a negative id) outside the model's vocabulary of {vocab_size}")
    return torch.from_numpy(arr.astype(np.int64, copy=False))


Scorer = Callable[[nn.Module, Any, int, torch.device, torch.dtype], "float | None"]


class ModelStepper:
    """The engine's stepper for one torch model (ours, a Hugging Face base behind an adapter, a chat model): AdamW,
    :func:`~bookmix.training.step.train_step`, the held-out loss by ``score`` (default: windows), checkpoints through
    ``checkpoint.save_checkpoint``. ``checkpoint``: the stored state to restore into the model (a resumed run's)."""

    def __init__(self, model: nn.Module, train_cfg: TrainConfig, device: torch.device, dtype: torch.dtype, *, name: str,
                 fit: Callable[[int], int] | None = None, faults: FaultInjector | None = None,
                 score: Scorer = heldout_loss, checkpoint: Checkpoint | None = None) -> None:
        self.model, self.device, self.dtype, self.name = model, device, dtype, name
        self.optimizer = make_optimizer(model, train_cfg, device)
        if checkpoint is not None:
            restore_training_state(checkpoint, model, self.optimizer)  # type: ignore[arg-type]
        self.runner = torch.compile(model) if train_cfg.compile else model
        self.fit, self.faults, self.score = fit, faults, score
        model.train()

    def fit_micro_batch(self, micro_batch: int) -> int:
        return self.fit(micro_batch) if self.fit is not None else micro_batch

    def step(self, runs: list[Run], lrs: list[float], micro_batch: int) -> tuple[torch.Tensor | None, torch.Tensor | None, list[int]]:
        run = runs[0]
        assert run.batches is not None
        batch, targets, tokens = run.batches(run.step)
        if tokens == 0:  # nothing to learn in this step (SFT: every assistant turn past the context)
            return None, None, [0]
        loss, grad_norm = train_step(self.runner, self.optimizer, batch, micro_batch=micro_batch, lr=lrs[0],
                                     grad_clip=run.train_cfg.grad_clip, device=self.device, dtype=self.dtype,
                                     step=run.step, faults=self.faults, targets=targets)
        return loss.reshape(1), grad_norm.reshape(1), [tokens]

    def heldout(self, runs: list[Run], micro_batch: int) -> list[float | None]:
        # The eager model: scoring under no_grad would make torch.compile build a second graph for little gain.
        held = runs[0].held
        return [self.score(self.model, held, micro_batch, self.device, self.dtype) if held is not None else None]

    def save(self, slot: int, run: Run, lr: float, state: dict) -> None:
        save_checkpoint(run.out_dir, self.model, self.optimizer, run.config, state)  # type: ignore[arg-type]

    def leave(self, slots: list[int]) -> None:
        pass

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
