"""Validity: how well each predictor ranks trials it has not seen, by K-fold cross-validation over recipes.

Folds split by replicate group, so a recipe's other seeds never leak into its own test fold. Two scores on the
pooled out-of-fold predictions: Spearman correlation with the measured objective, and pairwise decision accuracy
(of two trials of different recipes, how often the predictor picks the better one; 0.5 is a coin).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from bookmix.analysis.features import BookInfo
from bookmix.analysis.predictors import fit_predictors
from bookmix.analysis.table import TrialTable

# Pairs grow as n^2; beyond this many trials a seeded sample of pairs estimates the accuracy to +-0.001.
MAX_PAIRS = 1_000_000


@dataclass(frozen=True)
class Validity:
    predictor: str
    spearman: float | None
    pairwise_accuracy: float | None
    folds: int
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def spearman(pred: np.ndarray, y: np.ndarray) -> float | None:
    if len(y) < 3 or np.ptp(pred) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(pred, y).statistic)


def pairwise_accuracy(pred: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0) -> float | None:
    """Share of pairs (different recipes, different objectives) the predictor orders right; prediction ties = 1/2."""
    n = len(y)
    if n * (n - 1) // 2 <= MAX_PAIRS:
        i, j = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(seed)
        i, j = rng.integers(0, n, MAX_PAIRS), rng.integers(0, n, MAX_PAIRS)
    keep = (groups[i] != groups[j]) & (y[i] != y[j])
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return None
    agree = np.sign(pred[i] - pred[j]) * np.sign(y[i] - y[j])  # 1 right, -1 wrong, 0 tie
    return float(np.mean((agree + 1.0) / 2.0))


def fold_ids(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold of each trial: groups shuffled (seeded) and dealt round-robin, so folds have near-equal recipes."""
    k = int(groups.max()) + 1
    perm = np.random.default_rng(seed).permutation(k)
    fold_of_group = np.empty(k, dtype=np.int64)
    fold_of_group[perm] = np.arange(k) % folds
    return fold_of_group[groups]


def cross_validate(table: TrialTable, info: BookInfo, folds: int = 5, seed: int = 0) -> dict[str, Validity]:
    """Out-of-fold Spearman and pairwise accuracy of every predictor; empty when there are too few recipes."""
    n_groups = int(table.groups.max()) + 1
    folds = min(folds, n_groups)
    if folds < 2 or table.n < 6:
        return {}
    fold = fold_ids(table.groups, folds, seed)
    preds: dict[str, np.ndarray] = {}
    for f in range(folds):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        fitted = fit_predictors(table.subset(train), info, n_boot=0, seed=seed)
        sub = table.subset(test)
        for name, p in fitted.predict(sub.inclusion, sub.settings).items():
            preds.setdefault(name, np.full(table.n, np.nan))[test] = p
    out: dict[str, Validity] = {}
    y = table.objective
    for name, p in preds.items():
        ok = np.isfinite(p)  # a predictor skipped on a small fold has no prediction there
        out[name] = Validity(
            predictor=name,
            spearman=spearman(p[ok], y[ok]),
            pairwise_accuracy=pairwise_accuracy(p[ok], y[ok], table.groups[ok], seed),
            folds=folds,
            n=int(ok.sum()),
        )
    return out
