"""Built-in eval tasks; importing this package registers them (``REGISTRY``: type → settings class, run function).

A new task type is a new module here that subclasses ``TaskConfig`` and decorates its ``run`` with ``@register``.
"""

from __future__ import annotations

from bookmix.evals.tasks import choice, entity_recall, grammar, harness, heldout, next_passage, probe, samples  # noqa: F401
from bookmix.evals.tasks.base import REGISTRY, EvalContext, MetricData, TaskConfig, TaskOutput, register

__all__ = ["REGISTRY", "EvalContext", "MetricData", "TaskConfig", "TaskOutput", "register"]
