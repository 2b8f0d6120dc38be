"""Factor effects: order strategy, sparsity, epochs, set size and the books' make-up, each adjusted for the others.

One ridge regression of the objective on all standardised recipe features at once (so an effect is "holding the
other factors fixed"), with the penalty chosen by leave-one-out and wild-cluster bootstrap intervals. Numeric
factors read per +1 SD; a level (order=curriculum:difficulty) reads against the commonest level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bookmix.analysis.features import Featurizer
from bookmix.analysis.ridge import fit_dual_ridge, wild_bootstrap_duals

# The factor model has tens of columns, not millions; start the penalty grid near OLS.
FACTOR_ALPHAS = np.logspace(-6, 1, 22)


@dataclass(frozen=True)
class FactorEffect:
    factor: str
    kind: str  # 'numeric' | 'level' | 'mean' | 'share'
    effect: float
    ci: tuple[float, float]
    unit: str
    clear: bool  # the interval excludes zero

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d


@dataclass(frozen=True)
class FactorModel:
    effects: list[FactorEffect]
    coef: np.ndarray  # (q,) on standardised features
    intercept: float
    alpha: float

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.intercept + z @ self.coef


def _unit(feat: Featurizer, j: int) -> str:
    name, kind = feat.names[j], feat.kinds[j]
    if kind == "level":
        setting = name.split("=", 1)[0]
        return f"vs {setting}={feat.setting_levels[setting][0]}"
    return f"per +1 SD ({feat.scale[j]:.3g})"


def fit_factor_model(
    feat: Featurizer, z: np.ndarray, y: np.ndarray, groups: np.ndarray, n_boot: int = 200, level: float = 0.95,
    seed: int = 0,
) -> FactorModel:  # fmt: skip
    """Adjusted effects of every feature column of ``z`` (n, q); ``n_boot=0`` skips the intervals."""
    fit = fit_dual_ridge(z @ z.T, y, FACTOR_ALPHAS)
    coef = z.T @ fit.dual  # (q,)
    intercept = fit.y_mean - float(z.mean(axis=0) @ coef)
    effects: list[FactorEffect] = []
    if n_boot > 0 and z.shape[1]:
        draws = z.T @ wild_bootstrap_duals(fit, y, groups, n_boot, seed)  # (q, B)
        tail = (1.0 - level) / 2.0 * 100.0
        lo, hi = np.percentile(draws, [tail, 100.0 - tail], axis=1)
    else:
        lo = hi = np.full(z.shape[1], np.nan)
    # A level is a 0/1 column: undo its standardisation so the effect reads as the difference from the reference.
    unscale = np.array([1.0 / feat.scale[j] if feat.kinds[j] == "level" else 1.0 for j in range(z.shape[1])])
    coef_out, lo, hi = coef * unscale, lo * unscale, hi * unscale
    for j in range(z.shape[1]):
        effects.append(
            FactorEffect(
                factor=feat.names[j],
                kind=feat.kinds[j],
                effect=float(coef_out[j]),
                ci=(float(lo[j]), float(hi[j])),
                unit=_unit(feat, j),
                clear=bool(lo[j] > 0 or hi[j] < 0),
            )
        )
    return FactorModel(effects=effects, coef=coef, intercept=intercept, alpha=fit.alpha)
