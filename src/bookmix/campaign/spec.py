"""Trials as plain records: what to run (TrialSpec), what came back (TrialResult), and the deterministic trial id.

A trial is one recipe × one model/training setup × one seed. Its id hashes exactly those, so planning the same
campaign twice yields the same ids and re-running never duplicates a trial. Both records travel as JSON: to a worker
subprocess, to a Ray task, and back to the driver (the only writer of the results database).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

STATES = ("pending", "running", "completed", "failed", "diverged")
"""Trial states in the results store. ``diverged`` is a failure the trainer detected (non-finite loss)."""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def trial_id(recipe_id: str, model: dict[str, Any], train_math: dict[str, Any], seed: int) -> str:
    """16 hex chars of sha256 over the recipe id, the model shape, the training mathematics and the seed.

    Only settings that change what a run computes enter the hash (``TrainConfig.math_fields``): moving a campaign to
    another device or changing the micro-batch keeps every trial's id and thus its finished results.
    """
    model = {k: v for k, v in model.items() if k != "name"}
    train_math = {k: v for k, v in train_math.items() if k != "seed"}
    payload = _canonical({"recipe": recipe_id, "model": model, "train": train_math, "seed": int(seed)})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class TrialSpec:
    """Everything a worker needs to train and evaluate one trial, with no access to the results database."""

    trial_id: str
    recipe: dict[str, Any]
    """``Recipe.to_dict()``: the exact data order can be rebuilt from it."""
    seed: int
    stage: str
    """``search``, ``replicate``, ``oos`` (out of sample: trained, never fitted) or ``verify``."""
    round: int
    model: dict[str, Any]
    """``ModelConfig.to_dict()`` with the library's vocabulary."""
    train: dict[str, Any]
    """``TrainConfig.model_dump()`` with this trial's seed."""
    library: str
    suite: str
    out_dir: str
    """The trial folder: checkpoint, logs, result.json. On a cluster a path every node sees."""
    threads: int = 2

    @property
    def recipe_id(self) -> str:
        return str(self.recipe.get("id") or "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class TrialResult:
    """What a worker sends back. ``state`` is completed, failed or diverged; ``error`` says why when not completed."""

    trial_id: str
    state: str
    device: str = ""
    error: str | None = None
    objective: float | None = None
    objective_stderr: float | None = None
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """name → {"value": v, "stderr": s}."""
    curves: list[dict[str, Any]] = field(default_factory=list)
    """Rows {name, step, tokens, value} (train and held-out loss over training)."""
    tokens: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    artifacts: dict[str, str] = field(default_factory=dict)
    """kind → path (checkpoint folder, exported HF model, ...)."""
    oom: bool = False
    """The worker ran out of memory: the executor retries before recording a failure."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    @classmethod
    def failure(cls, trial_id: str, reason: str, device: str = "", oom: bool = False) -> TrialResult:
        return cls(trial_id=trial_id, state="failed", error=reason, device=device, oom=oom)
