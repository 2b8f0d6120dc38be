"""The eval suite: a YAML list of tasks (registered by ``type``, one level of grouping) and one objective.

    name: ltm_eval_set
    seed: 1234
    tasks:
      - {name: heldout, type: heldout_loss}
      - {name: scene_linking, type: next_passage, group: long_range, n_items: 200}
    objective: {weights: {scene_linking/margin_calibrated: 1.0}, direction: maximize}

Metric names are ``<task or group>/<metric>``, with ``@<key>=<value>`` for a breakdown (``heldout/bpb@lang=ru``).
The objective is one metric (``objective: heldout/bpb``) or a weighted sum; its direction defaults to the sense of
its metrics. An invalid file fails before any work, with the field path and the reason
(``tasks[2].n_items: must be ≥ 1, got 0``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from bookmix.errors import ConfigError, field_error
from bookmix.evals import tasks as _tasks  # noqa: F401  (registers the built-in task types)
from bookmix.evals.stats import DEFAULT_RESAMPLES
from bookmix.evals.tasks.base import REGISTRY, TaskConfig
from bookmix.utils.io import read_yaml


class Objective(BaseModel):
    """What a campaign optimises: Σ weight · metric, maximised or minimised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, float]
    """Metric name → weight. One metric with weight 1 is the plain case."""
    direction: Literal["maximize", "minimize"]


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "suite"
    description: str = ""
    seed: int = 1234
    """Seeds item building (which passages, which distractors) and the bootstrap: same seed, same items."""
    bootstrap: int = Field(default=DEFAULT_RESAMPLES, ge=2)
    """Bootstrap resamples per task for the standard errors."""
    tasks: list[SerializeAsAny[TaskConfig]]
    objective: Objective
    source: Path | None = Field(default=None, exclude=True)
    """The YAML file this suite came from (relative item paths resolve against its folder)."""

    @property
    def folder(self) -> Path:
        return self.source.parent if self.source is not None else Path.cwd()

    @property
    def groups(self) -> dict[str, list[TaskConfig]]:
        out: dict[str, list[TaskConfig]] = {}
        for t in self.tasks:
            if t.group:
                out.setdefault(t.group, []).append(t)
        return out

    # ---- loading ----------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> Suite:
        path = Path(path)
        data = read_yaml(path, missing="no such suite file")
        try:
            return cls.from_dict(data, source=path)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Any, source: Path | None = None) -> Suite:
        if not isinstance(data, dict):
            raise ConfigError(f"suite: must be a mapping, got {type(data).__name__}")
        raw_tasks = data.get("tasks")
        if not isinstance(raw_tasks, list) or not raw_tasks:
            raise ConfigError("tasks: must be a non-empty list of tasks")
        tasks = [_parse_task(i, t) for i, t in enumerate(raw_tasks)]
        _check_names(tasks)
        objective = _parse_objective(data.get("objective"), tasks)
        rest = {k: v for k, v in data.items() if k not in ("tasks", "objective")}
        try:
            return cls(**rest, tasks=tasks, objective=objective, source=source)
        except ValidationError as exc:
            raise ConfigError(field_error(exc)) from None

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


# ---- parsing helpers ----------------------------------------------------------------------------------------------
def _parse_task(i: int, raw: Any) -> TaskConfig:
    where = f"tasks[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in REGISTRY:
        raise ConfigError(f"{where}.type: unknown task type {kind!r}; choose one of {', '.join(sorted(REGISTRY))}")
    config_cls, _ = REGISTRY[kind]
    try:
        return config_cls(**raw)
    except ValidationError as exc:
        raise ConfigError(field_error(exc, where)) from None


def _check_names(tasks: list[TaskConfig]) -> None:
    seen: dict[str, int] = {}
    for i, t in enumerate(tasks):
        if "/" in t.key or "@" in t.key:
            raise ConfigError(f"tasks[{i}].name: must not contain '/' or '@', got {t.key!r}")
        if t.key in seen:
            raise ConfigError(f"tasks[{i}].name: {t.key!r} is already the name of tasks[{seen[t.key]}]")
        seen[t.key] = i
    for i, t in enumerate(tasks):
        if t.group and t.group in seen:
            raise ConfigError(f"tasks[{i}].group: {t.group!r} is also a task name")


def known_metrics(tasks: list[TaskConfig]) -> dict[str, bool]:
    """Every metric name the suite can report (breakdowns aside) → higher is better."""
    out: dict[str, bool] = {}
    for t in tasks:
        for m, hib in t.metric_senses().items():
            out[f"{t.key}/{m}"] = hib
            if t.group:
                out[f"{t.group}/{m}"] = hib
    return out


def _parse_objective(raw: Any, tasks: list[TaskConfig]) -> Objective:
    if raw is None:
        raise ConfigError("objective: missing (a metric name, or {weights: {metric: weight}, direction: ...})")
    if isinstance(raw, str):
        raw = {"metric": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"objective: must be a metric name or a mapping, got {type(raw).__name__}")
    unknown = set(raw) - {"metric", "weights", "direction"}
    if unknown:
        raise ConfigError(f"objective: unknown field(s) {', '.join(sorted(unknown))} (use metric or weights, direction)")
    if ("metric" in raw) == ("weights" in raw):
        raise ConfigError("objective: give exactly one of metric (a name) or weights ({metric: weight})")
    weights = {raw["metric"]: 1.0} if "metric" in raw else raw["weights"]
    if not isinstance(weights, dict) or not weights:
        raise ConfigError("objective.weights: must be a non-empty mapping of metric name to weight")
    known = known_metrics(tasks)
    senses = set()
    for name, w in weights.items():
        base = str(name).split("@", 1)[0]
        if base not in known:
            raise ConfigError(f"objective.weights: unknown metric {name!r}; known: {', '.join(sorted(known))}")
        if not isinstance(w, int | float) or isinstance(w, bool):
            raise ConfigError(f"objective.weights.{name}: must be a number, got {w!r}")
        senses.add(known[base] == (w > 0))
    direction = raw.get("direction")
    if direction is None:
        if len(senses) != 1:
            raise ConfigError("objective.direction: needed (maximize or minimize): the metrics' senses differ")
        direction = "maximize" if senses.pop() else "minimize"
    try:
        return Objective(weights={str(k): float(v) for k, v in weights.items()}, direction=direction)
    except ValidationError as exc:
        raise ConfigError(field_error(exc, "objective")) from None
