"""The eval suite: tasks from YAML, items built from held-out books or jsonl files, batched scoring, bootstrap
standard errors, one objective.

    from bookmix.evals import Suite, evaluate
    result = evaluate(model, Suite.load("examples/ltm_eval_set.yaml"), library)
"""

from __future__ import annotations

from bookmix.evals.run import EvalResult, Metric, Objective, evaluate
from bookmix.evals.scoring import Scorer, Scores
from bookmix.evals.suite import Suite

__all__ = ["EvalResult", "Metric", "Objective", "Scorer", "Scores", "Suite", "evaluate"]
