"""One unit of work on a worker: train and evaluate each trial of the unit, return TrialResults.

Runs inside a worker subprocess (local executor, ``python -m bookmix.campaign.worker UNIT.json``) or a Ray task.
It never touches the results database: every result goes back to the driver, and is also left as
``<trial>/trial.json`` (atomically) so that a driver killed before recording it can pick it up without re-running.
Training resumes from the trial's checkpoint, so an interrupted trial continues where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.utils.io import atomic_write_json

RESULT_FILE = "trial.json"
HELDOUT_TOKENS = 1 << 16
"""Held-out tokens read for the loss curve during training (the eval suite measures the final model properly):
64k tokens give a smooth curve at a cost of a fraction of a second per measurement on a nano model."""


def result_path(spec: TrialSpec) -> Path:
    return Path(spec.out_dir) / RESULT_FILE


def read_result(spec: TrialSpec) -> TrialResult | None:
    """The result a worker left in the trial folder, or None."""
    path = result_path(spec)
    if not path.exists():
        return None
    try:
        res = TrialResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return None
    return res if res.trial_id == spec.trial_id else None


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def heldout_stream(lib, seq_len: int):
    """A fixed held-out window stream for the training curve: the first holdout books, up to HELDOUT_TOKENS."""
    import numpy as np

    from bookmix.recipes.stream import ArrayWindows

    parts, total = [], 0
    for book in lib.books(split="holdout"):
        toks = np.asarray(lib.tokens(book.id))
        parts.append(toks[: HELDOUT_TOKENS - total])
        total += len(parts[-1])
        if total >= HELDOUT_TOKENS:
            break
    if total <= seq_len + 1:
        return None
    return ArrayWindows(np.concatenate(parts), seq_len)


def curve_rows(path: Path) -> list[dict[str, Any]]:
    """The trainer's curve.jsonl as store rows {name, step, tokens, value}: one row per numeric field per step."""
    from bookmix.training.curve import read_curve

    rows = []
    for rec in read_curve(path):
        step = rec.get("step")
        if step is None:
            continue
        for key, value in rec.items():
            v = _number(value) if key not in ("step", "tokens") else None
            if v is not None:
                rows.append({"name": key, "step": int(step), "tokens": rec.get("tokens"), "value": v})
    return rows


def eval_metrics(er: Any) -> tuple[dict[str, dict[str, float | None]], float | None, float | None]:
    """(metrics {name: {value, stderr}}, objective, objective stderr) from an EvalResult."""
    data = er.to_dict() if hasattr(er, "to_dict") else dict(er)
    metrics = {}
    for name, m in (data.get("metrics") or {}).items():
        if isinstance(m, dict):
            metrics[name] = {"value": _number(m.get("value")), "stderr": _number(m.get("stderr"))}
        else:
            metrics[name] = {"value": _number(m), "stderr": None}
    obj = data.get("objective")
    if isinstance(obj, dict):
        return metrics, _number(obj.get("value")), _number(obj.get("stderr"))
    return metrics, _number(obj), _number(data.get("objective_stderr"))


def _log_event(record: dict) -> None:
    """The trainer's events (start — with the step it resumes from —, out-of-memory backoff, divergence) go to the
    worker's log; the curve itself is read from the run folder at the end."""
    if "event" in record:
        print(json.dumps(record), flush=True)


def run_trial(spec: TrialSpec, device: str | None = None) -> TrialResult:
    """Train (or resume) and evaluate one trial. Failures come back as a failed TrialResult, never as an exception."""
    import torch

    torch.set_num_threads(max(1, spec.threads))
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = device or "auto"
    try:
        from bookmix.evals.run import evaluate
        from bookmix.evals.suite import Suite
        from bookmix.library import Library
        from bookmix.models.config import ModelConfig
        from bookmix.recipes import Recipe
        from bookmix.training.checkpoint import load_model
        from bookmix.training.config import TrainConfig
        from bookmix.training.device import resolve_device
        from bookmix.training.loop import train

        torch_dev = resolve_device(dev)
        lib = Library.open(spec.library)
        suite = Suite.load(spec.suite)
        recipe = Recipe.from_dict(spec.recipe)
        model_cfg = ModelConfig.from_dict(spec.model)
        tcfg = TrainConfig.from_dict({**spec.train, "seed": spec.seed, "device": str(torch_dev)})
        stream = recipe.stream(lib, model_cfg.block_size)
        t0 = time.time()
        meta = {"trial_id": spec.trial_id, "recipe": spec.recipe, "stage": spec.stage}
        tr = train(
            model_cfg,
            tcfg,
            stream,
            out,
            heldout=heldout_stream(lib, model_cfg.block_size),
            device=torch_dev,
            on_log=_log_event,
            meta=meta,
        )
        curves = curve_rows(Path(tr.paths.get("curve") or out / "curve.jsonl"))
        artifacts = {k: str(v) for k, v in tr.paths.items()}
        if tr.status == "diverged":
            return TrialResult(
                trial_id=spec.trial_id,
                state="diverged",
                device=str(torch_dev),
                error=f"diverged: loss not finite at step {tr.diverged_at_step}",
                curves=curves,
                tokens=tr.tokens,
                train_seconds=tr.seconds,
                artifacts=artifacts,
            )
        t1 = time.time()
        model, _, _ = load_model(out, device=torch_dev)
        er = evaluate(model, suite, lib, torch_dev)
        er.save(out / "eval.json")
        metrics, objective, objective_stderr = eval_metrics(er)
        if tr.heldout_loss is not None and "train/heldout_loss" not in metrics:
            metrics["train/heldout_loss"] = {"value": _number(tr.heldout_loss), "stderr": None}
        if tr.final_loss is not None:
            metrics["train/final_loss"] = {"value": _number(tr.final_loss), "stderr": None}
        return TrialResult(
            trial_id=spec.trial_id,
            state="completed",
            device=str(torch_dev),
            objective=objective,
            objective_stderr=objective_stderr,
            metrics=metrics,
            curves=curves,
            tokens=tr.tokens,
            train_seconds=tr.seconds if tr.seconds else t1 - t0,
            eval_seconds=time.time() - t1,
            artifacts=artifacts,
        )
    except torch.OutOfMemoryError as exc:
        return TrialResult.failure(spec.trial_id, f"out of memory: {exc}".splitlines()[0], str(dev), oom=True)
    except Exception as exc:  # a failing trial is recorded with its reason and the campaign goes on
        tail = traceback.format_exc(limit=-3)
        (out / "error.log").write_text(tail, encoding="utf-8")
        return TrialResult.failure(spec.trial_id, f"{type(exc).__name__}: {exc}".splitlines()[0], str(dev))


def run_unit(specs: list[TrialSpec], device: str | None = None) -> list[TrialResult]:
    """Run the trials of a unit one after another; each result is also left in its trial folder."""
    results = []
    for spec in specs:
        res = run_trial(spec, device)
        atomic_write_json(result_path(spec), res.to_dict())
        results.append(res)
    return results


# ---- worker subprocess entry point ---------------------------------------------------------------------------------
def _die_with_parent(driver_pid: int | None) -> None:
    """Ask Linux to kill this worker when the driver dies (kill -9 included), so a resumed driver never finds an
    orphan still training the same trial folder."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # pragma: no cover - not Linux: rely on the driver's cleanup
        return
    if driver_pid and os.getppid() != driver_pid:  # the driver died before prctl took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    unit = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    _die_with_parent(unit.get("driver_pid"))
    specs = [TrialSpec.from_dict(d) for d in unit["specs"]]
    run_unit(specs, unit.get("device"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
