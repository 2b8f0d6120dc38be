"""Every predictor of the objective, fitted together on one TrialTable, predicting for any recipe rows.

- ``datamodel``: book effects + settings (ridge, :mod:`bookmix.analysis.datamodel`)
- ``factors``: settings + book make-up, no book identities (:mod:`bookmix.analysis.factors`)
- ``surrogate``: boosted trees over the features and the datamodel's book score (:mod:`bookmix.analysis.surrogate`)
- ``lasso``: sparse book effects + settings (scikit-learn LassoCV), only while the design is small enough

The same function fits them on a cross-validation fold (no intervals) and on the whole table (with intervals).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from bookmix.analysis.datamodel import BookModel, fit_book_model
from bookmix.analysis.factors import FactorModel, fit_factor_model
from bookmix.analysis.features import BookInfo, Featurizer, fit_featurizer
from bookmix.analysis.surrogate import Surrogate, fit_surrogate
from bookmix.analysis.table import TrialTable

# Coordinate descent over many thousand book columns and a CV path costs minutes, and the ridge datamodel
# already covers that regime; the lasso is a second opinion for campaigns of a few thousand books.
LASSO_MAX_COLUMNS = 20_000


@dataclass(frozen=True)
class Predictors:
    featurizer: Featurizer
    settings_cols: np.ndarray  # indices of featurizer columns that describe reading, not the books
    book_model: BookModel
    factor_model: FactorModel
    surrogate: Surrogate | None
    lasso: Any | None

    def predict(self, inclusion: sp.csr_matrix, settings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        z = self.featurizer.transform(inclusion, settings)
        zs = z[:, self.settings_cols]
        out = {"datamodel": self.book_model.predict(inclusion, zs), "factors": self.factor_model.predict(z)}
        if self.surrogate is not None:
            out["surrogate"] = self.surrogate.predict(z, inclusion @ self.book_model.effect)
        if self.lasso is not None:
            out["lasso"] = self.lasso.predict(sp.hstack([inclusion, sp.csr_matrix(zs)]).tocsr())
        return out


def fit_predictors(
    table: TrialTable, info: BookInfo, n_boot: int = 200, level: float = 0.95, seed: int = 0, lasso: bool = True,
    surrogate: bool = True,
) -> Predictors:  # fmt: skip
    feat = fit_featurizer(table, info)
    z = feat.table_features(table)
    settings_cols = np.array(
        [j for j, (n, k) in enumerate(zip(feat.names, feat.kinds, strict=True)) if k in ("numeric", "level")
         and n != "set_size"], dtype=np.int64,
    )  # fmt: skip
    zs = z[:, settings_cols]
    y = table.objective
    book_model = fit_book_model(table.inclusion, zs, y, table.groups, n_boot=n_boot, level=level, seed=seed)
    factor_model = fit_factor_model(feat, z, y, table.groups, n_boot=n_boot, level=level, seed=seed + 1)
    sur = None
    if surrogate and table.n >= 8:  # fewer trials than that cannot grow a single useful tree
        sur = fit_surrogate(z, table.inclusion @ book_model.effect, y, feat.names, seed=seed)
    las = None
    if lasso and table.inclusion.shape[1] <= LASSO_MAX_COLUMNS and table.n >= 10:
        from sklearn.linear_model import LassoCV

        x = sp.hstack([table.inclusion, sp.csr_matrix(zs)]).tocsr()
        las = LassoCV(cv=min(5, table.n // 2), alphas=30, max_iter=5000, random_state=seed).fit(x, y)
    return Predictors(feat, settings_cols, book_model, factor_model, sur, las)
