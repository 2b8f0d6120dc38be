"""The nonlinear surrogate: gradient-boosted trees predicting a recipe's objective from its features.

RegMix found boosted trees beat linear models at predicting data-mixture quality; interactions (a curriculum that
only helps with enough epochs, a sparsity that only hurts short books) are what trees catch. Inputs: the
standardised recipe features plus the datamodel's book score (sum of the included books' effects), so the trees
need not relearn a million book identities. LightGBM when installed, else scikit-learn's HistGradientBoosting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

# Campaigns are small (tens to thousands of trials): shallow trees, a slow learning rate and row/column
# subsampling keep the trees from memorising seed noise. Leaves need a few trials each, more as data grows.
N_TREES = 300
LEARNING_RATE = 0.05
NUM_LEAVES = 15


@dataclass(frozen=True)
class Surrogate:
    kind: str  # 'lightgbm' | 'hist_gradient_boosting'
    model: Any
    feature_names: list[str]

    def predict(self, z: np.ndarray, book_score: np.ndarray) -> np.ndarray:
        x = np.column_stack([z, book_score])
        if self.kind == "lightgbm":
            return np.asarray(self.model.predict(x))
        with threadpool_limits(limits=1, user_api="openmp"):
            return np.asarray(self.model.predict(x))

    def importance(self) -> dict[str, float]:
        """Share of the trees' splits on each feature (LightGBM); empty for the scikit-learn fallback."""
        imp = getattr(self.model, "feature_importances_", None)
        if imp is None:
            return {}
        imp = np.asarray(imp, dtype=np.float64)
        total = imp.sum() or 1.0
        return {n: float(v / total) for n, v in zip(self.feature_names, imp, strict=True)}


def _safe_names(names: list[str]) -> list[str]:
    """LightGBM rejects some characters in feature names; keep them readable and unique."""
    out = []
    for i, n in enumerate(names):
        clean = "".join(c if c.isalnum() or c in "_-." else "_" for c in n)
        out.append(f"f{i}_{clean}"[:60])
    return out


def fit_surrogate(z: np.ndarray, book_score: np.ndarray, y: np.ndarray, names: list[str], seed: int = 0) -> Surrogate:
    """Fit the trees on (features, book score) -> objective."""
    x = np.column_stack([z, book_score])
    n = len(y)
    min_leaf = int(max(3, min(20, n // 10)))
    feature_names = _safe_names([*names, "book_score"])
    try:
        import lightgbm as lgb
    except ImportError:
        lgb = None  # type: ignore[assignment]
    if lgb is not None:
        model = lgb.LGBMRegressor(
            n_estimators=N_TREES, learning_rate=LEARNING_RATE, num_leaves=NUM_LEAVES, min_child_samples=min_leaf,
            subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0, random_state=seed, n_jobs=1,
            deterministic=True, force_row_wise=True, verbose=-1,
        )  # fmt: skip
        model.fit(x, y)  # numpy in, numpy out: no pandas needed, importances map to feature_names by position
        return Surrogate("lightgbm", model, feature_names)
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(
        max_iter=N_TREES, learning_rate=LEARNING_RATE, max_leaf_nodes=NUM_LEAVES, min_samples_leaf=min_leaf,
        l2_regularization=1.0, random_state=seed,
    )  # fmt: skip
    with threadpool_limits(limits=1, user_api="openmp"):  # tiny data: threads only add contention
        model.fit(x, y)
    return Surrogate("hist_gradient_boosting", model, feature_names)
