"""What every eval task shares: its settings, the registry by ``type``, and what running it returns.

A task is data in YAML (``type: next_passage``, ``n_items: 200`` ...) mapped onto a pydantic settings class, plus a
``run(cfg, ctx)`` function that builds its items, scores them and returns per-item arrays. Averaging and error bars
are not the task's business: :mod:`bookmix.evals.run` bootstraps every metric from the per-item arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict


class TaskConfig(BaseModel):
    """Settings every task has. Subclasses add their own fields and set ``type``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    """Which task this is (the registry key)."""
    name: str = ""
    """Prefix of the task's metric names (``scene_linking/acc``); defaults to ``type``."""
    group: str | None = None
    """Optional group (one level): the group's metrics average the same-named metrics of its tasks."""
    description: str = ""

    metrics: ClassVar[dict[str, bool]] = {}
    """Metric names this task reports, each with True when higher is better (used to check the objective)."""

    def metric_senses(self) -> dict[str, bool]:
        """The metric names this task reports → higher is better (a task whose metrics come from its settings
        overrides this)."""
        return dict(self.metrics)

    @property
    def key(self) -> str:
        return self.name or self.type

    def cache_fields(self) -> dict[str, Any]:
        """The settings that decide the items (not how they are scored): the cache key of built items."""
        return self.model_dump(exclude={"name", "group", "description"})


@dataclass
class MetricData:
    """One metric as a ratio over a task's items: value = Σ num / Σ den.

    A plain mean has ``den`` all ones; a token-weighted loss has ``num`` = summed nats and ``den`` = tokens. A
    breakdown (per language) is the same arrays with zeros outside the subset, so every metric of a task can be
    bootstrapped with the same resampled item indices.
    """

    num: np.ndarray
    den: np.ndarray
    higher_is_better: bool = True

    @classmethod
    def mean(cls, values: np.ndarray, higher_is_better: bool = True, mask: np.ndarray | None = None) -> MetricData:
        values = np.asarray(values, dtype=np.float64)
        den = np.ones_like(values) if mask is None else np.asarray(mask, dtype=np.float64)
        return cls(np.where(den > 0, values, 0.0) * den, den, higher_is_better)


@dataclass
class TaskOutput:
    """Per-item results of one task: ``n_items`` items, every metric an array over them."""

    n_items: int
    metrics: dict[str, MetricData] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    """Plain facts about the run (chance level, items skipped, source files), copied into the result."""


@dataclass
class EvalContext:
    """What a task's ``run`` may use: the scorer, the library, where the suite lives, the seed, the item cache."""

    scorer: Any  # bookmix.evals.scoring.Scorer
    library: Any  # bookmix.library.Library (or anything with the same read methods)
    suite_dir: Path
    seed: int
    cache_dir: Path | None = None
    checkpoint: Path | None = None
    """The model's checkpoint folder when known (tasks that run on an export, such as lm_eval, need it)."""

    def resolve(self, path: str) -> Path:
        """A path from the suite: absolute, ``{library}/...``, or relative to the suite file's folder."""
        if path.startswith("{library}"):
            return Path(str(self.library.path) + path[len("{library}") :])
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.suite_dir / p


RunFn = Callable[[Any, EvalContext], TaskOutput]
REGISTRY: dict[str, tuple[type[TaskConfig], RunFn]] = {}


def register(type_name: str, config_cls: type[TaskConfig]) -> Callable[[RunFn], RunFn]:
    """Register ``run`` as the task ``type_name`` with its settings class (``@register("next_passage", Config)``)."""

    def deco(fn: RunFn) -> RunFn:
        REGISTRY[type_name] = (config_cls, fn)
        return fn

    return deco



def choice_prob(logprob: np.ndarray, owner: np.ndarray, true_idx: np.ndarray, n_items: int) -> np.ndarray:
    """Per item, the probability of its true candidate among its candidates: exp(log p(true)) / Σ exp(log p(c)) over
    the item's candidates (flat, grouped by ``owner``). Bounded in [0, 1], chance 1/k, and continuous: it moves with
    every change of the model's preference, where accuracy moves only when the best candidate changes."""
    top = np.full(n_items, -np.inf)
    np.maximum.at(top, owner, logprob)
    total = np.zeros(n_items)
    np.add.at(total, owner, np.exp(logprob - top[owner]))
    return np.exp(logprob[true_idx] - top) / total


def best_distractor(score: np.ndarray, owner: np.ndarray, true_idx: np.ndarray, n_items: int) -> np.ndarray:
    """Per item, the highest score among its wrong candidates (flat candidates grouped by ``owner``)."""
    masked = score.copy()
    masked[true_idx] = -np.inf
    best = np.full(n_items, -np.inf)
    np.maximum.at(best, owner, masked)
    return best
