"""The single-model trainer: one model, one stream of windows, from scratch (or from its checkpoint) to the end.

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

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.models.model import LM
from bookmix.recipes.stream import WindowSource
from bookmix.training.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    read_checkpoint,
    recover,
    restore_training_state,
    save_checkpoint,
)
from bookmix.training.config import TrainConfig
from bookmix.training.curve import CURVE, Curve
from bookmix.training.device import compute_dtype, enable_fast_math, fit_micro_batch, memory_bytes, resolve_device
from bookmix.training.evaluate import heldout_loss, sample_windows
from bookmix.training.faults import FaultInjector
from bookmix.training.result import RESULT, TrainResult
from bookmix.training.schedule import lr_at
from bookmix.training.step import make_optimizer, train_step

__all__ = ["RunPlan", "TrainResult", "plan_run", "run_config", "train"]

LogFn = Callable[[dict], None]


@dataclass(frozen=True)
class RunPlan:
    """The shape of a run, fixed before the first step."""

    seq_len: int
    n_windows: int
    """Windows trained: the whole stream, or fewer when max_tokens caps it."""
    windows_per_step: int
    total_steps: int

    @property
    def total_tokens(self) -> int:
        return self.n_windows * self.seq_len


def run_config(model_cfg: ModelConfig, train_cfg: TrainConfig, stream: WindowSource, plan: RunPlan, meta) -> dict:  # noqa: ANN001
    """The resolved configuration a trial stores in its checkpoint (the single and the packed trainer write the same)."""
    return {
        "model": model_cfg.to_dict(),
        "train": train_cfg.model_dump(mode="json"),
        "stream": {"seq_len": plan.seq_len, "n_windows": plan.n_windows, "stream_windows": int(stream.n_windows)},
        "total_steps": plan.total_steps,
        "meta": dict(meta or {}),
        "torch": torch.__version__,
    }


def plan_run(model_cfg: ModelConfig, train_cfg: TrainConfig, stream: WindowSource) -> RunPlan:
    seq_len, n = int(stream.seq_len), int(stream.n_windows)
    if seq_len > model_cfg.block_size:
        raise BookmixError(f"stream: seq_len {seq_len} exceeds the model's block_size {model_cfg.block_size}")
    if train_cfg.max_tokens is not None:
        n = min(n, train_cfg.max_tokens // seq_len)
    if n < 1:
        raise BookmixError(f"stream: no window of {seq_len + 1} tokens to train on (max_tokens {train_cfg.max_tokens})")
    e = train_cfg.windows_per_step
    return RunPlan(seq_len=seq_len, n_windows=n, windows_per_step=e, total_steps=math.ceil(n / e))


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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = TrainResult.load(out_dir)
    if done is not None:
        return done

    plan = plan_run(model_cfg, train_cfg, stream)
    dev = resolve_device(device if device is not None else train_cfg.device)
    dtype = compute_dtype(dev, train_cfg.dtype)
    enable_fast_math(dev)
    config = run_config(model_cfg, train_cfg, stream, plan, meta)
    recover(out_dir)
    ckpt = read_checkpoint(out_dir)
    if ckpt is not None:
        check_resumable(ckpt, config, train_cfg)

    torch.manual_seed(train_cfg.seed)
    model = LM(model_cfg, seed=train_cfg.seed).to(dev)
    optimizer = make_optimizer(model, train_cfg, dev)
    events = Events(out_dir / "events.jsonl", on_log)
    if ckpt is not None:
        restore_training_state(ckpt, model, optimizer)
        step, tokens, seconds0 = int(ckpt.state["step"]), int(ckpt.state["tokens"]), float(ckpt.state["seconds"])
        micro_batch, last_loss = int(ckpt.state["micro_batch"]), ckpt.state.get("last_loss")
    else:
        step, tokens, seconds0, last_loss = 0, 0, 0.0, None
        micro_batch = fit_micro_batch(model_cfg, train_cfg.micro_batch, plan.seq_len, dtype, memory_bytes(dev))
        if micro_batch < train_cfg.micro_batch:
            events.emit({"event": "oom_backoff", "step": 0, "micro_batch": micro_batch, "reason": "memory estimate"})
    events.emit({"event": "start", "step": step, "total_steps": plan.total_steps, "device": str(dev), "micro_batch": micro_batch})
    curve = Curve(out_dir / CURVE, keep_until_step=step)
    runner = torch.compile(model) if train_cfg.compile else model
    held = sample_windows(heldout, train_cfg.eval_windows) if heldout is not None else None
    if held is not None and held.shape[1] - 1 > model_cfg.block_size:
        raise BookmixError(f"heldout: seq_len {held.shape[1] - 1} exceeds the model's block_size {model_cfg.block_size}")
    paths = {"checkpoint": str(out_dir / CHECKPOINT), "curve": str(out_dir / CURVE), "result": str(out_dir / RESULT)}

    def finish(status: str, final_loss, held_loss, diverged_at=None) -> TrainResult:
        seconds = seconds0 + (time.perf_counter() - t0)
        result = TrainResult(
            final_loss=final_loss, heldout_loss=held_loss, steps=step, tokens=tokens, seconds=seconds,
            tokens_per_s=tokens / seconds if seconds > 0 else 0.0, diverged_at_step=diverged_at, status=status,
            paths=paths, micro_batch=micro_batch,
        )
        result.save(out_dir)
        return result

    def held_loss() -> float | None:
        # The eager model: scoring under no_grad would make torch.compile build a second graph for little gain.
        return heldout_loss(model, held, micro_batch, dev, dtype) if held is not None else None

    t0 = time.perf_counter()
    if step >= plan.total_steps:  # killed after the final checkpoint, before result.json
        return finish("completed", last_loss, held_loss())

    model.train()
    record: dict = {}
    first_bad = torch.full((), -1, dtype=torch.long, device=dev)  # first non-finite step, tracked without a sync
    mark_t, mark_tokens, last_ckpt_t = time.perf_counter(), tokens, time.perf_counter()
    while step < plan.total_steps:
        lo = step * plan.windows_per_step
        hi = min(lo + plan.windows_per_step, plan.n_windows)
        batch = load_windows(stream, lo, hi, model_cfg.vocab_size)
        lr = lr_at(step, plan.total_steps, train_cfg)
        try:
            loss, grad_norm = train_step(
                runner, optimizer, batch, micro_batch=micro_batch, lr=lr, grad_clip=train_cfg.grad_clip,
                device=dev, dtype=dtype, step=step, faults=faults,
            )
        except torch.OutOfMemoryError:
            micro_batch = _back_off(model, optimizer, micro_batch, dev, model_cfg)
            events.emit({"event": "oom_backoff", "step": step, "micro_batch": micro_batch,
                         "grad_accum": math.ceil(plan.windows_per_step / micro_batch)})
            continue  # same step again, same windows, same effective batch
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
        step += 1
        tokens += (hi - lo) * plan.seq_len

        last = step == plan.total_steps
        log = step % train_cfg.log_every == 0 or last
        evaluate = held is not None and (last or (train_cfg.eval_every > 0 and step % train_cfg.eval_every == 0))
        now = time.perf_counter()
        ckpt_due = last or (train_cfg.checkpoint_every > 0 and step % train_cfg.checkpoint_every == 0) or (
            train_cfg.checkpoint_seconds > 0 and now - last_ckpt_t >= train_cfg.checkpoint_seconds
        )
        if not (log or evaluate or ckpt_due):
            continue
        bad = int(first_bad)  # the host sync: only here, every log_every steps or at a checkpoint
        if bad >= 0:
            step, tokens = bad, min(bad * plan.windows_per_step, plan.n_windows) * plan.seq_len
            events.emit({"event": "diverged", "step": bad, "checkpoint_step": _ckpt_step(out_dir)})
            return finish("diverged", _finite(last_loss), None, diverged_at=bad)
        last_loss = float(loss)
        if log or evaluate:
            now = time.perf_counter()
            record = {
                "step": step, "tokens": tokens, "loss": last_loss, "lr": lr, "grad_norm": float(grad_norm),
                "tokens_per_s": (tokens - mark_tokens) / max(now - mark_t, 1e-9),
            }
            if evaluate:
                record["heldout_loss"] = held_loss()
            curve.append(record)
            if on_log is not None:
                on_log(record)
            mark_t, mark_tokens = time.perf_counter(), tokens
        if ckpt_due:
            state = {
                "step": step, "tokens": tokens, "micro_batch": micro_batch,
                "grad_accum": math.ceil(plan.windows_per_step / micro_batch),
                "seconds": seconds0 + (time.perf_counter() - t0), "last_loss": last_loss,
            }
            save_checkpoint(out_dir, model, optimizer, config, state)
            last_ckpt_t = time.perf_counter()
    return finish("completed", last_loss, record.get("heldout_loss"))


# ---- helpers ------------------------------------------------------------------------------------------------
def load_windows(stream: WindowSource, lo: int, hi: int, vocab_size: int) -> torch.Tensor:
    """Windows lo..hi as an int64 tensor, (n, T+1); ids outside the vocabulary are a clear error, not a CUDA assert."""
    arr = np.asarray(stream.windows(lo, hi))
    top = int(arr.max())
    if top >= vocab_size or (arr.dtype.kind == "i" and int(arr.min()) < 0):
        raise BookmixError(f"stream: windows {lo}:{hi} hold token id {top} (or a negative id) outside the model's vocabulary of {vocab_size}")
    return torch.from_numpy(arr.astype(np.int64, copy=False))


def _back_off(model: LM, optimizer: torch.optim.Optimizer, micro_batch: int, dev: torch.device, cfg: ModelConfig) -> int:
    """After an out-of-memory error: drop the partial gradients and halve the micro-batch (accumulation doubles)."""
    optimizer.zero_grad(set_to_none=True)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    if micro_batch == 1:
        raise BookmixError(f"out of GPU memory at micro-batch 1: model {cfg.name!r} does not fit {dev}")
    return max(1, micro_batch // 2)


def check_resumable(ckpt: Checkpoint, config: dict, train_cfg: TrainConfig) -> None:
    """A checkpoint continues only the run that wrote it: same model, same mathematics, same stream."""
    where = ckpt.path / "config.json"
    old_model = {k: v for k, v in ckpt.config.get("model", {}).items() if k != "name"}
    new_model = {k: v for k, v in config["model"].items() if k != "name"}
    for key in sorted(set(old_model) | set(new_model)):
        if old_model.get(key) != new_model.get(key):
            raise BookmixError(f"{where}: cannot resume: model.{key} is {old_model.get(key)!r} there but {new_model.get(key)!r} now")
    old_train = TrainConfig.from_dict(ckpt.config.get("train", {})).math_fields()
    new_train = train_cfg.math_fields()
    for key in sorted(new_train):
        if old_train.get(key) != new_train[key]:
            raise BookmixError(f"{where}: cannot resume: train.{key} is {old_train.get(key)!r} there but {new_train[key]!r} now")
    for key in ("seq_len", "n_windows"):
        if ckpt.config.get("stream", {}).get(key) != config["stream"][key]:
            raise BookmixError(f"{where}: cannot resume: the stream's {key} is {ckpt.config.get('stream', {}).get(key)} there but {config['stream'][key]} now")


def _ckpt_step(out_dir: Path) -> int | None:
    ckpt = read_checkpoint(out_dir)
    return int(ckpt.state["step"]) if ckpt else None


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Events:
    """OUT/events.jsonl plus the caller's log callback, for the rare things worth a line of their own."""

    def __init__(self, path: Path, on_log: LogFn | None) -> None:
        self.path, self.on_log = path, on_log

    def emit(self, event: dict) -> None:
        if event["event"] != "start":
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(event) + "\n")
        if self.on_log is not None:
            self.on_log(event)
