"""The TrialTable: every trial of a campaign as arrays, the one input all the analysis math reads.

Rows are trials. The book-inclusion matrix is a scipy CSR matrix (trials x books seen in any recipe), so a million
candidate books cost nothing beyond the books actually used. Replicates (the same recipe trained with other seeds)
share a ``group``; the noise floor and the cross-validation folds are built on those groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from bookmix.analysis.recipe_fields import recipe_books, recipe_key, recipe_settings
from bookmix.errors import BookmixError

# Settings read as numbers (adjusted, per-SD effects) and as categories (effects against a reference level).
NUMERIC_SETTINGS = ("sparsity_keep", "sparsity_chunk", "epochs")
CATEGORICAL_SETTINGS = ("order", "grain", "sparsity_pattern")


@dataclass(frozen=True)
class TrialTable:
    """Trials as arrays. ``objective`` is oriented so that higher is better (the campaign does the orienting)."""

    trial_ids: list[str]
    recipes: list[dict[str, Any]]
    stages: np.ndarray  # (n,) str
    seeds: np.ndarray  # (n,) int
    objective: np.ndarray  # (n,) float64, higher is better
    objective_stderr: np.ndarray  # (n,) float64, NaN where unknown
    metrics: dict[str, np.ndarray]  # name -> (n,) float64, NaN where a trial lacks the metric
    book_ids: np.ndarray  # (p,) str: the columns of ``inclusion``
    inclusion: sp.csr_matrix  # (n, p) float64: 1 where the trial's recipe contains the book
    settings: dict[str, np.ndarray]  # NUMERIC_SETTINGS (float) and CATEGORICAL_SETTINGS (str), (n,) each
    groups: np.ndarray  # (n,) int: replicate group (one per distinct recipe)
    group_keys: list[str]  # recipe key of each group

    @property
    def n(self) -> int:
        return len(self.trial_ids)

    @property
    def set_size(self) -> np.ndarray:
        """Distinct books per trial, (n,)."""
        return np.diff(self.inclusion.indptr).astype(np.float64)

    def subset(self, rows: np.ndarray) -> TrialTable:
        """The trials at ``rows`` (same book columns), e.g. one cross-validation fold."""
        rows = np.asarray(rows)
        _, groups = np.unique(self.groups[rows], return_inverse=True)
        keys = [self.group_keys[g] for g in np.unique(self.groups[rows])]
        return TrialTable(
            trial_ids=[self.trial_ids[i] for i in rows],
            recipes=[self.recipes[i] for i in rows],
            stages=self.stages[rows],
            seeds=self.seeds[rows],
            objective=self.objective[rows],
            objective_stderr=self.objective_stderr[rows],
            metrics={k: v[rows] for k, v in self.metrics.items()},
            book_ids=self.book_ids,
            inclusion=self.inclusion[rows],
            settings={k: v[rows] for k, v in self.settings.items()},
            groups=groups.astype(np.int64),
            group_keys=keys,
        )


def _number(value: Any, where: str, allow_nan: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BookmixError(f"{where}: must be a number, got {value!r}") from None
    if not np.isfinite(x) and not (allow_nan and np.isnan(x)):
        raise BookmixError(f"{where}: must be a finite number, got {value!r}")
    return x


def from_records(records: Sequence[Mapping[str, Any]], source: str = "records") -> TrialTable:
    """Build a TrialTable from the campaign's result records.

    Each record is ``{trial_id, recipe (Recipe.to_dict()), seed, stage, objective, objective_stderr, metrics}``.
    Records without an objective (failed or unfinished trials) are an error here: the caller filters them, so
    nothing is silently dropped. ``source`` names where the records came from in error messages.
    """
    if len(records) == 0:
        raise BookmixError(f"{source}: no finished trials to analyse")
    trial_ids, recipes, stages, seeds, obj, err = [], [], [], [], [], []
    books_per_trial: list[list[str]] = []
    metric_rows: list[Mapping[str, Any]] = []
    settings_rows: list[dict[str, Any]] = []
    for i, rec in enumerate(records):
        where = f"{source}[{i}]"
        if not isinstance(rec, Mapping):
            raise BookmixError(f"{where}: must be a mapping, got {type(rec).__name__}")
        recipe = rec.get("recipe")
        if not isinstance(recipe, Mapping):
            raise BookmixError(f"{where}.recipe: must be a recipe dict (Recipe.to_dict()), got {recipe!r}")
        try:
            books = recipe_books(recipe)
        except ValueError as exc:
            raise BookmixError(f"{where}.recipe: {exc}") from None
        if not books:
            raise BookmixError(f"{where}.recipe.books: must name at least one book")
        trial_ids.append(str(rec.get("trial_id", i)))
        recipes.append(dict(recipe))
        stages.append(str(rec.get("stage", "explore")))
        seeds.append(int(rec.get("seed", 0) or 0))
        obj.append(_number(rec.get("objective"), f"{where}.objective"))
        se = rec.get("objective_stderr")
        err.append(np.nan if se is None else _number(se, f"{where}.objective_stderr", allow_nan=True))
        rec_metrics = rec.get("metrics") or {}
        if not isinstance(rec_metrics, Mapping):
            raise BookmixError(f"{where}.metrics: must map metric names to numbers, got {rec_metrics!r}")
        metric_rows.append(rec_metrics)
        books_per_trial.append(books)
        settings_rows.append(recipe_settings(recipe))
    n = len(records)

    # Book columns: only books some recipe uses. One np.unique over all ids gives the CSR column indices.
    lengths = np.fromiter((len(b) for b in books_per_trial), dtype=np.int64, count=n)
    flat = np.array([b for bs in books_per_trial for b in bs], dtype=object).astype(str)
    book_ids, cols = np.unique(flat, return_inverse=True)
    rows = np.repeat(np.arange(n), lengths)
    inclusion = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(n, len(book_ids)))
    inclusion.sum_duplicates()
    inclusion.data[:] = 1.0  # a repeated book is still one inclusion; repeats show up as epochs/length

    names = sorted({k for m in metric_rows for k in m})
    metrics: dict[str, np.ndarray] = {}
    for name in names:
        vals = [m.get(name) for m in metric_rows]
        metrics[name] = np.array(
            [np.nan if v is None else _number(v, f"{source}[{i}].metrics.{name}", True) for i, v in enumerate(vals)]
        )

    settings: dict[str, np.ndarray] = {}
    for k in NUMERIC_SETTINGS:
        settings[k] = np.array([s[k] for s in settings_rows], dtype=np.float64)
    for k in CATEGORICAL_SETTINGS:
        settings[k] = np.array([s[k] for s in settings_rows], dtype=object).astype(str)

    keys = [recipe_key(r) for r in recipes]
    group_keys, groups = np.unique(np.array(keys), return_inverse=True)
    return TrialTable(
        trial_ids=trial_ids,
        recipes=recipes,
        stages=np.array(stages),
        seeds=np.array(seeds, dtype=np.int64),
        objective=np.array(obj),
        objective_stderr=np.array(err),
        metrics=metrics,
        book_ids=book_ids,
        inclusion=inclusion.tocsr(),
        settings=settings,
        groups=groups.astype(np.int64),
        group_keys=[str(k) for k in group_keys],
    )
