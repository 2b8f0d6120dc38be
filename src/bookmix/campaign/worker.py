"""One unit of work on a worker: train and evaluate each trial of the unit, return TrialResults.

Runs inside a worker subprocess (local executor, ``python -m bookmix.campaign.worker UNIT.json``) or a Ray task.
It never touches the results database: every result goes back to the driver, and is also left as
``<trial>/trial.json`` (atomically) so that a driver killed before recording it can pick it up without re-running.
Training resumes from the trial's checkpoint, so an interrupted trial continues where it stopped.

A trial trains one of three ways, all leaving the same trial folder and all composed by ``bookmix.trial`` (the same
stream and held-out windows as `bookmix train`): a bookmix model from scratch (``trial.train_recipe``), a Hugging Face
base continued with LoRA or fully (fine-tune mode: ``trial.finetune_recipe``, the spec's model names a ``base``), or
several same-shape trials of a unit stacked into one packed model (``trial.train_recipes_packed``).
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


class _Trial:
    """What every path through a trial needs: its library, suite, recipe and training settings, opened once."""

    def __init__(self, spec: TrialSpec, torch_dev) -> None:  # noqa: ANN001 - torch.device
        from bookmix.evals.suite import Suite
        from bookmix.library import Library
        from bookmix.recipes import Recipe
        from bookmix.training.config import TrainConfig

        self.spec = spec
        self.out = Path(spec.out_dir)
        self.device = torch_dev
        self.lib = Library.open(spec.library)
        self.suite = Suite.load(spec.suite)
        self.recipe = Recipe.from_dict(spec.recipe)
        self.tcfg = TrainConfig.from_dict({**spec.train, "seed": spec.seed, "device": str(torch_dev)})
        self.meta = {"trial_id": spec.trial_id, "recipe": spec.recipe, "stage": spec.stage}


def is_finetune(spec: TrialSpec) -> bool:
    """Fine-tune mode: the spec's model is a FinetuneConfig (it names a ``base``), not a ModelConfig."""
    return "base" in spec.model


def _train(t: _Trial):  # noqa: ANN202 - (TrainResult, model loader)
    """Train (or resume) one trial alone; returns the TrainResult and a function giving (model, block size) to evaluate."""
    from bookmix import trial

    if is_finetune(t.spec):
        from bookmix.training.finetune import FinetuneConfig, load_finetuned

        ft = FinetuneConfig(**t.spec.model)
        tr = trial.finetune_recipe(t.lib, t.recipe, ft, t.tcfg, t.out, device=t.device, on_log=_log_event, meta=t.meta)
        return tr, lambda: load_finetuned(t.out, t.device)
    from bookmix.models.config import ModelConfig

    model_cfg = ModelConfig.from_dict(t.spec.model)
    tr = trial.train_recipe(t.lib, t.recipe, model_cfg, t.tcfg, t.out, device=t.device, on_log=_log_event, meta=t.meta)
    return tr, lambda: _load_lm(t)


def _load_lm(t: _Trial):  # noqa: ANN202
    from bookmix.training.checkpoint import load_model

    model, cfg, _ = load_model(t.out, device=t.device)
    return model, cfg.block_size


def _outcome(t: _Trial, tr, load, t0: float) -> TrialResult:  # noqa: ANN001
    """Evaluate a trained trial and build its TrialResult (a diverged run is reported, not evaluated)."""
    from bookmix.evals.run import evaluate

    spec, dev = t.spec, str(t.device)
    curves = curve_rows(Path(tr.paths.get("curve") or t.out / "curve.jsonl"))
    artifacts = {k: str(v) for k, v in tr.paths.items()}
    if tr.status == "diverged":
        return TrialResult(
            trial_id=spec.trial_id,
            state="diverged",
            device=dev,
            error=f"diverged: loss not finite at step {tr.diverged_at_step}",
            curves=curves,
            tokens=tr.tokens,
            train_seconds=tr.seconds,
            artifacts=artifacts,
        )
    t1 = time.time()
    model, block_size = load()
    er = evaluate(model, t.suite, t.lib, t.device, block_size=block_size)
    er.save(t.out / "eval.json")
    metrics, objective, objective_stderr = eval_metrics(er)
    if tr.heldout_loss is not None and "train/heldout_loss" not in metrics:
        metrics["train/heldout_loss"] = {"value": _number(tr.heldout_loss), "stderr": None}
    if tr.final_loss is not None:
        metrics["train/final_loss"] = {"value": _number(tr.final_loss), "stderr": None}
    return TrialResult(
        trial_id=spec.trial_id,
        state="completed",
        device=dev,
        objective=objective,
        objective_stderr=objective_stderr,
        metrics=metrics,
        curves=curves,
        tokens=tr.tokens,
        train_seconds=tr.seconds if tr.seconds else t1 - t0,
        eval_seconds=time.time() - t1,
        artifacts=artifacts,
    )


def _failure(spec: TrialSpec, exc: BaseException, dev: str) -> TrialResult:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return TrialResult.failure(spec.trial_id, f"out of memory: {exc}".splitlines()[0], dev, oom=True)
    tail = traceback.format_exc(limit=-3)
    (Path(spec.out_dir) / "error.log").write_text(tail, encoding="utf-8")
    return TrialResult.failure(spec.trial_id, f"{type(exc).__name__}: {exc}".splitlines()[0], dev)


def run_trial(spec: TrialSpec, device: str | None = None) -> TrialResult:
    """Train (or resume) and evaluate one trial. Failures come back as a failed TrialResult, never as an exception."""
    import torch

    torch.set_num_threads(max(1, spec.threads))
    Path(spec.out_dir).mkdir(parents=True, exist_ok=True)
    dev = device or "auto"
    try:
        from bookmix.training.device import resolve_device

        t = _Trial(spec, resolve_device(dev))
        t0 = time.time()
        tr, load = _train(t)
        return _outcome(t, tr, load, t0)
    except Exception as exc:  # a failing trial is recorded with its reason and the campaign goes on
        return _failure(spec, exc, str(dev))


# ---- packs ---------------------------------------------------------------------------------------------------------
def pack_key(spec: TrialSpec) -> str:
    """Trials with the same key can train as one packed model: same shape, library, suite and training mathematics
    (the seed aside, which the packed trainer takes per model). Fine-tuned trials never pack."""
    if is_finetune(spec):
        return f"alone:{spec.trial_id}"
    train = {k: v for k, v in spec.train.items() if k != "seed"}
    return json.dumps({"model": spec.model, "train": train, "library": spec.library, "suite": spec.suite}, sort_keys=True)


def use_packed(packed: bool | None, device_type: str) -> bool:
    """Whether a unit's same-shape trials train as one packed model: forced either way by ``executor.packed``, else
    only on a GPU (a CPU runs a micro model's matmuls at full speed already; bench/train_packed.py)."""
    return bool(packed) if packed is not None else device_type == "cuda"


def run_pack(specs: list[TrialSpec], device: str | None = None) -> list[TrialResult]:
    """Train same-shape trials together (``training.packed.train_pack``), then evaluate each as a single trial is.
    Each trial folder ends up as a single run leaves it, so results, resume and retention do not tell them apart.
    If the pack itself fails, the trials run one after another (each resumes from the pack's checkpoints)."""
    import torch

    from bookmix import trial
    from bookmix.models.config import ModelConfig
    from bookmix.training.device import resolve_device

    torch.set_num_threads(max(1, specs[0].threads))
    dev = device or "auto"
    try:
        torch_dev = resolve_device(dev)
        trials = [_Trial(s, torch_dev) for s in specs]
        t0 = time.time()
        trained = trial.train_recipes_packed(
            trials[0].lib, [t.recipe for t in trials], ModelConfig.from_dict(specs[0].model), trials[0].tcfg,
            [t.out for t in trials], pack=len(trials), device=torch_dev, seeds=[s.seed for s in specs],
            on_log=_log_event, metas=[t.meta for t in trials],
        )
    except Exception as exc:
        print(json.dumps({"event": "pack_failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}), flush=True)
        return [run_trial(s, device) for s in specs]
    results = []
    for t, tr in zip(trials, trained, strict=True):
        try:
            results.append(_outcome(t, tr, lambda t=t: _load_lm(t), t0))
        except Exception as exc:
            results.append(_failure(t.spec, exc, str(torch_dev)))
    return results


def run_unit(specs: list[TrialSpec], device: str | None = None, packed: bool | None = None) -> list[TrialResult]:
    """Run the trials of a unit; each result is also left in its trial folder (atomically) as soon as it is known.

    Same-shape trials train as one packed model when :func:`use_packed` says so; otherwise one after another."""
    from bookmix.training.device import resolve_device

    groups: dict[str, list[TrialSpec]] = {}
    if len(specs) > 1 and use_packed(packed, resolve_device(device or "auto").type):
        for s in specs:
            groups.setdefault(pack_key(s), []).append(s)
    by_id: dict[str, TrialResult] = {}
    for spec in specs:
        if spec.trial_id in by_id:
            continue
        group = groups.get(pack_key(spec)) or [spec]  # in specs' order: spec is the first of its group
        batch = run_pack(group, device) if len(group) > 1 else [run_trial(spec, device)]
        for s, res in zip(group, batch, strict=True):
            atomic_write_json(result_path(s), res.to_dict())
            by_id[s.trial_id] = res
    return [by_id[s.trial_id] for s in specs]


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
    run_unit(specs, unit.get("device"), unit.get("packed"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
