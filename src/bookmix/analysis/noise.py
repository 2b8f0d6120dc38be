"""The noise floor: how much a metric moves when only the training seed changes, against how much recipes differ.

A one-way ANOVA over replicate groups (trials of the same recipe). The within-group standard deviation is the
noise; the between-recipe standard deviation (its unbiased, noise-corrected estimate) is the signal. When the
F-test cannot tell recipes apart, the finding says so in a plain sentence instead of ranking noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

# Below this p-value the between-recipe spread is taken as real; the usual 5% level, no multiple-testing tricks,
# because the verdict is shown next to the numbers rather than used to hide them.
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class NoiseFloor:
    metric: str
    replicate_std: float | None  # pooled within-recipe std (None: no recipe was replicated)
    signal_std: float | None  # noise-corrected std of the true recipe means
    snr: float | None  # signal_std / replicate_std
    p_value: float | None  # one-way ANOVA F-test: do recipes differ at all?
    n_trials: int
    n_recipes: int
    n_replicated: int  # recipes with at least two trials
    below_noise: bool | None
    sentence: str

    def to_dict(self) -> dict:
        return asdict(self)


def noise_floor(values: np.ndarray, groups: np.ndarray, metric: str) -> NoiseFloor:
    """Replicate noise and recipe signal of one metric. ``values`` (n,) may hold NaN (trial lacks the metric)."""
    ok = np.isfinite(values)
    v, g = values[ok], groups[ok]
    n = len(v)
    if n == 0:
        return NoiseFloor(metric, None, None, None, None, 0, 0, 0, None, f"{metric}: no values.")
    _, g = np.unique(g, return_inverse=True)
    k = int(g.max()) + 1
    counts = np.bincount(g, minlength=k).astype(np.float64)
    means = np.bincount(g, weights=v, minlength=k) / counts
    ss_within = float(np.sum((v - means[g]) ** 2))
    df_within = n - k
    n_rep = int(np.sum(counts >= 2))
    if df_within <= 0:
        spread = float(np.std(means, ddof=1)) if k > 1 else 0.0
        return NoiseFloor(
            metric, None, None, None, None, n, k, n_rep, None,
            f"{metric}: no recipe was trained with more than one seed, so the noise floor is unknown; "
            f"recipes spread by {spread:.4g} (std) but that may be seed noise. Add a replicate stage.",
        )  # fmt: skip
    ms_within = ss_within / df_within
    noise = float(np.sqrt(ms_within))
    if k < 2:
        return NoiseFloor(
            metric, noise, None, None, None, n, k, n_rep, None,
            f"{metric}: only one recipe, replicate std {noise:.4g}; nothing to compare.",
        )  # fmt: skip
    grand = float(v.mean())
    ms_between = float(np.sum(counts * (means - grand) ** 2)) / (k - 1)
    # Unbalanced one-way ANOVA: the effective replicates per recipe, n0, turns MS_between into the signal variance.
    n0 = (n - float(np.sum(counts**2)) / n) / (k - 1)
    signal = float(np.sqrt(max(ms_between - ms_within, 0.0) / n0))
    if ms_within > 0:
        f = ms_between / ms_within
        p = float(stats.f.sf(f, k - 1, df_within))
    else:
        p = 0.0 if ms_between > 0 else 1.0
    snr = signal / noise if noise > 0 else float("inf")
    below = p >= SIGNIFICANCE
    if below:
        sentence = (
            f"{metric}: differences between recipes are below the noise floor (replicate std {noise:.4g}, "
            f"recipe signal std {signal:.4g}, p={p:.2g}); do not read rankings by this metric."
        )
    else:
        sentence = (
            f"{metric}: recipes differ beyond seed noise (signal std {signal:.4g} vs replicate std {noise:.4g}, "
            f"signal-to-noise {snr:.2f}, p={p:.2g})."
        )
    return NoiseFloor(metric, noise, signal, snr, p, n, k, n_rep, below, sentence)


def noise_report(objective: np.ndarray, metrics: dict[str, np.ndarray], groups: np.ndarray) -> dict[str, NoiseFloor]:
    """The noise floor of the objective and of every metric, keyed by name (objective first)."""
    out = {"objective": noise_floor(objective, groups, "objective")}
    for name, values in metrics.items():
        out[name] = noise_floor(values, groups, name)
    return out
