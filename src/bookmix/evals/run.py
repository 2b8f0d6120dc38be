"""Run a suite on one model: every task's items scored, every metric with a bootstrap standard error, the objective.

    from bookmix.evals import Suite, evaluate
    result = evaluate(model, Suite.load("examples/ltm_eval_set.yaml"), "lib/")
    result.metrics["scene_linking/acc"].value, result.objective.value, result.objective.stderr

``model`` is a ``bookmix.models.model.LM`` (its block size is read from ``model.cfg``) or any callable mapping a
(B, T) LongTensor to (B, T, V) logits, with ``block_size`` given.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bookmix.errors import BookmixError
from bookmix.evals.cache import CACHE_DIR
from bookmix.evals.scoring import Scorer, as_logits_fn
from bookmix.evals.stats import Estimate, bootstrap_all, mean_of, resample_indices, weighted_sum
from bookmix.evals.suite import Suite
from bookmix.evals.tasks.base import REGISTRY, EvalContext
from bookmix.utils.io import atomic_write_json


@dataclass
class Metric:
    value: float
    stderr: float
    n: int
    """Items behind the value (for a group: summed over its tasks)."""
    higher_is_better: bool = True


@dataclass
class Objective:
    value: float
    stderr: float
    direction: str
    weights: dict[str, float]


@dataclass
class EvalResult:
    suite: str
    metrics: dict[str, Metric]
    objective: Objective
    samples: list[dict] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per task: items, seconds, items/s and plain facts (chance level, files, items skipped)."""
    seconds: float = 0.0
    items: int = 0

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalResult:
        return cls(
            suite=d["suite"],
            metrics={k: Metric(**_unfinite(v)) for k, v in d["metrics"].items()},
            objective=Objective(**_unfinite(d["objective"])),
            samples=d.get("samples", []),
            tasks=d.get("tasks", {}),
            seconds=d.get("seconds", 0.0),
            items=d.get("items", 0),
        )

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())


def evaluate(
    model: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor],
    suite: Suite | str | os.PathLike,
    library: Any,
    device: str | torch.device | None = None,
    batch_size: int = 32,
    block_size: int | None = None,
    cache: bool = True,
    checkpoint: str | os.PathLike | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalResult:
    """Score ``model`` on every task of ``suite`` with items from ``library`` (a Library or its folder).

    Built items are cached under ``LIBRARY/evals/`` unless ``cache`` is False. ``progress(task, i, n_tasks)`` is
    called before each task. ``checkpoint`` (the model's run or checkpoint folder) is needed by ``lm_eval`` tasks,
    which run on a Hugging Face export of it.
    """
    if not isinstance(suite, Suite):
        suite = Suite.load(suite)
    if isinstance(library, str | os.PathLike):
        from bookmix.library import Library

        library = Library.open(library)
    was_training = isinstance(model, torch.nn.Module) and model.training
    try:
        return _evaluate(model, suite, library, device, batch_size, block_size, cache, checkpoint, progress)
    finally:
        if was_training:  # a model evaluated mid-training goes back to training mode
            model.train()


def _evaluate(model, suite: Suite, library, device, batch_size, block_size, cache, checkpoint, progress) -> EvalResult:
    if isinstance(model, torch.nn.Module) and block_size is None:
        scorer = Scorer.for_model(model, device=device, batch_size=batch_size)
    else:
        if block_size is None:
            raise BookmixError("evaluate: block_size is needed when the model is a plain logits function")
        scorer = Scorer(as_logits_fn(model), block_size, device or "cpu", batch_size)
    ctx = EvalContext(scorer, library, suite.folder, suite.seed, Path(library.path) / CACHE_DIR if cache else None,
                      Path(checkpoint) if checkpoint is not None else None)

    t0 = time.perf_counter()
    estimates: dict[str, Estimate] = {}
    samples: list[dict] = []
    tasks: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(suite.tasks):
        if progress is not None:
            progress(task.key, i, len(suite.tasks))
        t = time.perf_counter()
        out = REGISTRY[task.type][1](task, ctx)
        seconds = time.perf_counter() - t
        samples += out.samples
        tasks[task.key] = {"type": task.type, "items": out.n_items, "seconds": seconds,
                           "items_per_s": out.n_items / seconds if seconds > 0 else None, **out.info}
        if out.n_items == 0:
            continue
        idx = resample_indices(out.n_items, suite.bootstrap, [suite.seed, i])
        for name, est in bootstrap_all(out.metrics, idx).items():
            estimates[f"{task.key}/{name}"] = est

    for group, members in suite.groups.items():
        names = {n.split("/", 1)[1] for n in estimates if n.split("/", 1)[0] in {m.key for m in members}}
        for name in sorted(names):
            parts = [estimates[f"{m.key}/{name}"] for m in members if f"{m.key}/{name}" in estimates]
            estimates[f"{group}/{name}"] = mean_of(parts)

    missing = [m for m in suite.objective.weights if m not in estimates]
    if missing:
        skipped = {k: v["skipped"] for k, v in tasks.items() if "skipped" in v}
        why = f" (skipped: {skipped})" if skipped else ""
        raise BookmixError(f"objective: metric(s) {', '.join(missing)} were not produced{why}")
    obj = weighted_sum([estimates[m] for m in suite.objective.weights], list(suite.objective.weights.values()))
    seconds = time.perf_counter() - t0
    return EvalResult(
        suite=suite.name,
        metrics={k: Metric(e.value, e.stderr, e.n, e.higher_is_better) for k, e in sorted(estimates.items())},
        objective=Objective(obj.value, obj.stderr, suite.objective.direction, dict(suite.objective.weights)),
        samples=samples,
        tasks=tasks,
        seconds=seconds,
        items=sum(v["items"] for v in tasks.values()),
    )


def _finite(obj: Any) -> Any:
    """NaN and infinities as None, so the result is strict JSON."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _unfinite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (float("nan") if v is None and k in ("value", "stderr") else v) for k, v in d.items()}
