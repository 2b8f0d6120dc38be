"""The training engine: the one loop behind every way bookmix trains (single model, packed, LoRA fine-tune, chat SFT).

    run = open_run(out_dir, config, train_cfg, total_steps, resume=("model", "stream"), on_log=on_log)
    if run.result is None:                          # a finished run is not trained again
        ...build the model, restore run.checkpoint into it...
        result = train_runs(stepper, [run], device)[0]

A :class:`Run` is one trial's bookkeeping, the same for every trainer: the resume check against its checkpoint, the
step and token position, the log / held-out / checkpoint cadence (by steps and by seconds), divergence, out-of-memory
backoff, ``events.jsonl``, ``curve.jsonl`` and ``result.json``. A :class:`Stepper` knows only the arithmetic: it trains
the current step of K runs at once (K = 1 but for the packed trainer), scores them on held-out data and saves one's
checkpoint.

Divergence: the first step whose loss is not finite is tracked on the device without a host sync and read whenever
anything is due (a log, an evaluation, a checkpoint), before any checkpoint is written, so NaN weights are never saved
whatever the cadence. The run stops there as ``diverged``; its last good checkpoint stays. Out of memory: the partial
gradients are dropped and the micro-batch halves (accumulation doubles, the step is the same); at 1 it is an error.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from bookmix.errors import BookmixError
from bookmix.training.checkpoint import CHECKPOINT, Checkpoint, read_checkpoint, recover
from bookmix.training.config import TrainConfig
from bookmix.training.curve import CURVE, Curve
from bookmix.training.result import RESULT, TrainResult
from bookmix.training.schedule import lr_at

LogFn = Callable[[dict], None]
Batch = tuple[torch.Tensor, torch.Tensor | None, int]
"""One step's data: (windows (n, T+1), None, tokens) or (inputs, targets with IGNORE_INDEX, learned tokens)."""

EVENTS = "events.jsonl"
STATE_FIELDS = ("step", "tokens", "micro_batch", "grad_accum", "seconds", "last_loss")
"""What the engine writes to a checkpoint's state.json; a trainer may add its own fields (``Run.extra_state``)."""
UNCOMPARED = frozenset({"name", "stream_windows"})
"""Config fields a resume may change: a preset's label, and the stream's full length (``max_tokens`` caps it)."""


@dataclass
class Run:
    """One trial's progress and files; built by :func:`open_run`, advanced by :func:`train_runs`."""

    out_dir: Path
    config: dict
    """The resolved configuration stored in every checkpoint (``config.json``)."""
    train_cfg: TrainConfig
    total_steps: int
    on_log: LogFn | None = None
    paths: dict[str, str] = field(default_factory=dict)
    checkpoint: Checkpoint | None = None
    """The checkpoint resumed from; the trainer restores the model from it."""
    result: TrainResult | None = None
    """Set once finished (also when found finished by open_run)."""
    step: int = 0
    tokens: int = 0
    seconds0: float = 0.0
    last_loss: float | None = None
    micro_batch: int | None = None
    """The micro-batch the checkpoint was saved at (a resume keeps an out-of-memory split)."""
    extra_state: dict = field(default_factory=dict)
    """The trainer's own checkpoint state (SFT: the held-out loss before training)."""
    batches: Callable[[int], Batch] | None = None
    """The data of a step, given the step."""
    held: Any = None
    """Held-out data in the stepper's form; None: no held-out loss."""
    on_complete: Callable[[], object] | None = None
    """Called once the last step is saved, before result.json (fine-tune: the Hugging Face export)."""
    _curve: Curve | None = None
    _mark: tuple[float, int] = (0.0, 0)
    _synced: tuple[int, int] = (0, 0)
    _step_tokens: list[int] = field(default_factory=list)

    def emit(self, event: dict) -> None:
        """An event: a line of events.jsonl (but ``start``) and a record for the caller."""
        if event["event"] != "start":
            with (self.out_dir / EVENTS).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(event) + "\n")
        if self.on_log is not None:
            self.on_log(event)

    def state(self, micro_batch: int, seconds: float) -> dict:
        return {"step": self.step, "tokens": self.tokens, "micro_batch": micro_batch,
                "grad_accum": math.ceil(self.train_cfg.windows_per_step / micro_batch), "seconds": seconds,
                "last_loss": self.last_loss, **self.extra_state}  # fmt: skip

    def finish(self, status: str, final_loss: float | None, heldout: float | None, micro_batch: int, seconds: float,
               diverged_at: int | None = None) -> None:  # fmt: skip
        self.result = TrainResult(
            final_loss=final_loss, heldout_loss=heldout, steps=self.step, tokens=self.tokens, seconds=seconds,
            tokens_per_s=self.tokens / seconds if seconds > 0 else 0.0, diverged_at_step=diverged_at,
            status=status,  # type: ignore[arg-type]
            paths=self.paths, micro_batch=micro_batch,
        )  # fmt: skip
        self.result.save(self.out_dir)

    def _due(self, now: float, last_ckpt: float) -> tuple[bool, bool, bool, bool]:
        """(log, evaluate, checkpoint, last) after the step just taken."""
        c, s = self.train_cfg, self.step
        last = s == self.total_steps
        evaluate = self.held is not None and (last or (c.eval_every > 0 and s % c.eval_every == 0))
        ckpt = last or (c.checkpoint_every > 0 and s % c.checkpoint_every == 0) or (
            c.checkpoint_seconds > 0 and now - last_ckpt >= c.checkpoint_seconds)  # fmt: skip
        return s % c.log_every == 0 or last, evaluate, ckpt, last


def open_run(out_dir: str | Path, config: dict, train_cfg: TrainConfig, total_steps: int, *,
             resume: Sequence[str], on_log: LogFn | None = None, paths: dict[str, str] | None = None) -> Run:  # fmt: skip
    """The run in ``out_dir``: finished (``result`` set), resumed from its checkpoint, or new. A checkpoint continues
    only the run that wrote it: the ``train`` mathematics and the config sections named in ``resume`` must match."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"checkpoint": str(out / CHECKPOINT), "curve": str(out / CURVE), "result": str(out / RESULT)}
    run = Run(out, config, train_cfg, total_steps, on_log, {**files, **(paths or {})}, result=TrainResult.load(out))
    if run.result is not None:
        return run
    recover(out)
    ckpt = read_checkpoint(out)
    if ckpt is not None:
        check_resumable(ckpt, config, train_cfg, resume)
        st = ckpt.state
        run.checkpoint, run.step, run.tokens = ckpt, int(st["step"]), int(st["tokens"])
        run.seconds0, run.last_loss, run.micro_batch = float(st["seconds"]), st.get("last_loss"), int(st["micro_batch"])
        run.extra_state = {k: v for k, v in st.items() if k not in STATE_FIELDS}
    return run


def check_resumable(ckpt: Checkpoint, config: dict, train_cfg: TrainConfig, sections: Sequence[str]) -> None:
    """Refuse, naming the field, a checkpoint whose mathematics differ from this run's."""
    where = ckpt.path / "config.json"
    views = {"train": (TrainConfig.from_dict(ckpt.config.get("train", {})).math_fields(), train_cfg.math_fields())}
    views |= {k: (ckpt.config.get(k) or {}, config[k]) for k in sections}
    for name, (old, new) in views.items():
        for key in sorted((set(old) | set(new)) - UNCOMPARED):
            if old.get(key) != new.get(key):
                raise BookmixError(f"{where}: cannot resume: {name}.{key} is {old.get(key)!r} there but {new.get(key)!r} now")  # fmt: skip


class Stepper(Protocol):
    """The arithmetic of one kind of training. Slot s is ``runs[s]`` of the list the engine passes."""

    name: str
    """What trains, for the out-of-memory error: "model 'nano'", "a pack of 8 'nano' models"."""

    def fit_micro_batch(self, micro_batch: int) -> int:
        """The micro-batch ≤ ``micro_batch`` that the memory estimate allows at the start of a fresh run."""

    def step(self, runs: list[Run], lrs: list[float], micro_batch: int) -> tuple[torch.Tensor | None, torch.Tensor | None, list[int]]:  # fmt: skip
        """Train step ``run.step`` of every run: (loss (K,), grad norm (K,), tokens of each), without a host sync; loss
        None when the step had nothing to learn. Raises torch.OutOfMemoryError before updating anything."""

    def heldout(self, runs: list[Run], micro_batch: int) -> list[float | None]:
        """Held-out loss of every run's model now (None for a run without held-out data)."""

    def save(self, slot: int, run: Run, lr: float, state: dict) -> None:
        """Write run ``slot``'s checkpoint with ``state`` as its state.json."""

    def leave(self, slots: list[int]) -> None:
        """Runs ``slots`` are done: drop them from the step; the others keep their order."""

    def zero_grad(self) -> None:
        """Drop partial gradients (after an out-of-memory error)."""


def train_runs(stepper: Stepper, runs: Sequence[Run], device: torch.device, start: dict | None = None) -> list[TrainResult]:  # fmt: skip
    """Train every run from its position to its end (or its divergence); their results, in order. ``start`` is added
    to each run's start event (the pack size)."""
    everyone, runs = list(runs), list(runs)
    stored = [r.micro_batch for r in runs if r.micro_batch is not None]
    micro_batch = min(stored) if stored else stepper.fit_micro_batch(runs[0].train_cfg.micro_batch)
    for r in runs:
        if r.micro_batch is None and micro_batch < r.train_cfg.micro_batch:
            r.emit({"event": "oom_backoff", "step": 0, "micro_batch": micro_batch, "reason": "memory estimate"})
        r.emit({"event": "start", "step": r.step, "total_steps": r.total_steps, "device": str(device),
                "micro_batch": micro_batch, **(start or {})})  # fmt: skip
        r._curve = Curve(r.out_dir / CURVE, keep_until_step=r.step)
        r._mark, r._synced = (time.perf_counter(), r.tokens), (r.step, r.tokens)
    t0 = last_ckpt = time.perf_counter()
    first_bad = torch.full((len(runs),), -1, dtype=torch.long, device=device)  # first non-finite step, without a sync

    def drop(leaving: list[int]) -> None:
        nonlocal runs, first_bad
        keep = [s for s in range(len(runs)) if s not in leaving]
        runs = [runs[s] for s in keep]
        stepper.leave(leaving)
        if keep:
            first_bad = first_bad[torch.as_tensor(keep, device=device)]

    # Killed after a run's final checkpoint, before its result.json: finish it without training.
    done = [s for s, r in enumerate(runs) if r.step >= r.total_steps]
    if done:
        held = stepper.heldout(runs, micro_batch)
        for s in done:
            _complete(runs[s], runs[s].last_loss, held[s], micro_batch, t0)
        drop(done)

    while runs:
        lrs = [lr_at(r.step, r.total_steps, r.train_cfg) for r in runs]
        try:
            loss, grad_norm, tokens = stepper.step(runs, lrs, micro_batch)
        except torch.OutOfMemoryError:
            stepper.zero_grad()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if micro_batch == 1:
                raise BookmixError(f"out of GPU memory at micro-batch 1: {stepper.name} does not fit {device}") from None  # fmt: skip
            micro_batch = max(1, micro_batch // 2)
            for r in runs:
                r.emit({"event": "oom_backoff", "step": r.step, "micro_batch": micro_batch,
                        "grad_accum": math.ceil(r.train_cfg.windows_per_step / micro_batch)})  # fmt: skip
            continue  # the same step again: same data, same effective batch
        if loss is not None:
            steps: int | torch.Tensor = runs[0].step if len(runs) == 1 else torch.tensor([r.step for r in runs], device=device)  # fmt: skip
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), steps, first_bad)
        now = time.perf_counter()
        due = []
        for r, n in zip(runs, tokens, strict=True):
            r.step, r.tokens = r.step + 1, r.tokens + n
            r._step_tokens.append(n)
            due.append(r._due(now, last_ckpt))
        if not any(any(d) for d in due):
            continue

        bad = first_bad.tolist()  # the host sync: only when some run logs, evaluates or saves
        losses = loss.tolist() if loss is not None else [None] * len(runs)
        norms = grad_norm.tolist() if grad_norm is not None else [None] * len(runs)
        scores = stepper.heldout(runs, micro_batch) if any(d[1] for d in due) else None
        leaving, saved = [], False
        for s, (r, (log, evaluate, ckpt, last)) in enumerate(zip(runs, due, strict=True)):
            if bad[s] >= 0:
                _diverge(r, bad[s], micro_batch, t0)
                leaving.append(s)
                continue
            r._synced, r._step_tokens = (r.step, r.tokens), []
            if not (log or evaluate or ckpt):
                continue
            if losses[s] is not None:
                r.last_loss = losses[s]
            if log or evaluate:
                now = time.perf_counter()
                record = {"step": r.step, "tokens": r.tokens, "loss": losses[s], "lr": lrs[s], "grad_norm": norms[s],
                          "tokens_per_s": (r.tokens - r._mark[1]) / max(now - r._mark[0], 1e-9)}  # fmt: skip
                if evaluate:
                    record["heldout_loss"] = scores[s] if scores is not None else None
                assert r._curve is not None
                r._curve.append(record)
                if r.on_log is not None:
                    r.on_log(record)
                r._mark = (time.perf_counter(), r.tokens)
            if ckpt:
                stepper.save(s, r, lrs[s], r.state(micro_batch, r.seconds0 + time.perf_counter() - t0))
                saved = True
            if last:
                _complete(r, r.last_loss, scores[s] if evaluate and scores is not None else None, micro_batch, t0)
                leaving.append(s)
        if saved:
            last_ckpt = time.perf_counter()
        if leaving:
            drop(leaving)
    return [r.result for r in everyone]  # type: ignore[misc]


def _complete(run: Run, final_loss: float | None, heldout: float | None, micro_batch: int, t0: float) -> None:
    if run.on_complete is not None:
        run.on_complete()
    run.finish("completed", final_loss, heldout, micro_batch, run.seconds0 + time.perf_counter() - t0)


def _diverge(run: Run, bad: int, micro_batch: int, t0: float) -> None:
    """Stop at step ``bad``, whose loss was not finite: the run ends there, its last good checkpoint kept."""
    synced_step, synced_tokens = run._synced
    run.step, run.tokens = bad, synced_tokens + sum(run._step_tokens[: bad - synced_step])
    ckpt = read_checkpoint(run.out_dir)
    run.emit({"event": "diverged", "step": bad, "checkpoint_step": int(ckpt.state["step"]) if ckpt else None})
    final = run.last_loss if run.last_loss is not None and math.isfinite(run.last_loss) else None
    run.finish("diverged", final, None, micro_batch, run.seconds0 + time.perf_counter() - t0,
               diverged_at=bad)  # fmt: skip
