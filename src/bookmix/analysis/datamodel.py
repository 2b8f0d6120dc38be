"""Book effects (datamodels): regress the objective on which books each recipe contains.

objective = intercept + sum over included books of effect[book] + settings . gamma + noise

fitted by ridge on the sparse inclusion matrix (dual form, penalty by leave-one-out), with the recipe settings
(order, sparsity, epochs) in the same model so each book's effect is adjusted for how it was read. A book's effect
is the change in the objective from adding it to a recipe; when every recipe has the same number of books only
differences between books are identified, and the effects are relative to the average book of the pool.
Intervals: wild-cluster bootstrap of the residuals (see :mod:`bookmix.analysis.ridge`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bookmix.analysis.ridge import DualRidge, fit_dual_ridge, wild_bootstrap_duals

# Settings columns enter the kernel multiplied by this, so their penalty is 1/100 of a book's: a handful of
# well-replicated settings should be estimated almost freely, while thousands of books need the shrinkage.
SETTINGS_SCALE = 10.0


@dataclass(frozen=True)
class BookModel:
    effect: np.ndarray  # (p,) in the order of TrialTable.book_ids
    ci_low: np.ndarray  # (p,)
    ci_high: np.ndarray  # (p,)
    trials: np.ndarray  # (p,) trials whose recipe includes the book
    settings_coef: np.ndarray  # (q,) on the standardised settings columns
    intercept: float
    alpha: float
    df: float
    loo_mse: float

    def predict(self, inclusion: sp.csr_matrix, settings_z: np.ndarray) -> np.ndarray:
        """Predicted objective of recipes given their inclusion rows (n, p) and standardised settings (n, q)."""
        return self.intercept + inclusion @ self.effect + settings_z @ self.settings_coef


def fit_book_model(
    inclusion: sp.csr_matrix,
    settings_z: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> BookModel:
    """Fit book effects with intervals. ``n_boot=0`` skips the bootstrap (intervals are NaN), for CV folds."""
    x = inclusion.tocsr().astype(np.float64)
    zs = SETTINGS_SCALE * settings_z
    kernel = (x @ x.T).toarray() + zs @ zs.T  # (n, n)
    fit: DualRidge = fit_dual_ridge(kernel, y)
    effect = np.asarray(x.T @ fit.dual).ravel()  # (p,)
    coef = SETTINGS_SCALE**2 * (settings_z.T @ fit.dual)  # (q,)
    intercept = fit.y_mean - float(np.asarray(x.mean(axis=0)).ravel() @ effect) - float(settings_z.mean(0) @ coef)
    p = x.shape[1]
    lo = np.full(p, np.nan)
    hi = np.full(p, np.nan)
    if n_boot > 0:
        duals = wild_bootstrap_duals(fit, y, groups, n_boot, seed)  # (n, B)
        draws = (x.T @ duals.astype(np.float32)).astype(np.float32)  # (p, B); float32 halves memory at 1M books
        tail = (1.0 - level) / 2.0 * 100.0
        lo, hi = np.percentile(draws, [tail, 100.0 - tail], axis=1)
    trials = np.asarray((x > 0).sum(axis=0)).ravel()
    return BookModel(
        effect=effect,
        ci_low=np.asarray(lo, dtype=np.float64),
        ci_high=np.asarray(hi, dtype=np.float64),
        trials=trials,
        settings_coef=coef,
        intercept=intercept,
        alpha=fit.alpha,
        df=fit.df,
        loo_mse=fit.loo_mse,
    )
