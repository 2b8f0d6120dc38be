"""The noise floor: how much a metric moves when only the training seed changes, against how much recipes differ.

A one-way ANOVA over replicate groups (trials of the same recipe). The within-group standard deviation is the
noise; the between-recipe standard deviation (its unbiased, noise-corrected estimate) is the signal. When the
F-test cannot tell recipes apart, the finding says so in a plain sentence instead of ranking noise.

Paired seeds. A seed is the same initialisation for every recipe trained with it, and every search trial of a
campaign shares its seeds, so part of what a seed does (its *common* effect: one initialisation is simply better than
another, for all recipes) shifts every recipe alike and cannot reorder them. Only the recipe x seed interaction can.
When recipes were trained at several seeds (the replicate stage), :func:`seed_offsets` estimates each seed's common
effect from them (an additive two-way fit) and the noise floor is measured after removing it: the noise that
decides rankings, not the larger one-way figure that also counts what every recipe shares. On real books the
common effect was the larger part of the seed noise (bench/snr.py: seed std 0.0062 nats against an interaction of
0.0038), so the one-way floor understated the recipe-to-seed ratio about twofold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from bookmix.analysis.table import TrialTable

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
    seed_std: float | None = None  # std of the seeds' common effect, removed before the floor (None: not estimable)
    oneway_std: float | None = None  # the within-recipe std with the seeds' common effect left in

    def to_dict(self) -> dict:
        return asdict(self)


def seed_offsets(values: np.ndarray, groups: np.ndarray, seeds: np.ndarray, iters: int = 200) -> dict[int, float]:
    """Each seed's common effect (the same for every recipe trained with it), from the recipes trained at two or
    more seeds: the least-squares additive fit value ~ recipe + seed over those trials (alternating means, which
    converge for any connected design). The most used seed is the reference (offset 0), so search trials keep their
    values. Seeds no multi-seed recipe was trained with get no offset (not estimable)."""
    ok = np.isfinite(values)
    v, g, s = values[ok], groups[ok], seeds[ok].astype(np.int64)
    pairs = np.unique(np.stack([g, s]), axis=1)  # distinct (recipe, seed) pairs
    multi_groups, n_seeds = np.unique(pairs[0], return_counts=True)
    keep = np.isin(g, multi_groups[n_seeds >= 2])
    if not keep.any():
        return {}
    v, g, s = v[keep], g[keep], s[keep]
    _, gi = np.unique(g, return_inverse=True)
    ids, si = np.unique(s, return_inverse=True)
    gc, sc = np.bincount(gi), np.bincount(si)
    b = np.zeros(len(ids))
    for _ in range(iters):
        a = np.bincount(gi, weights=v - b[si]) / gc
        b, prev = np.bincount(si, weights=v - a[gi]) / sc, b
        if np.max(np.abs(b - prev)) < 1e-12:
            break
    uses = np.array([np.sum(seeds == x) for x in ids])
    ref = int(np.argmax(uses))  # the most used seed (the lowest id on a tie)
    return {int(x): float(off) for x, off in zip(ids, b - b[ref], strict=True)}


def without_seed_effects(
    values: np.ndarray, groups: np.ndarray, seeds: np.ndarray, offsets: dict[int, float] | None = None
) -> np.ndarray:
    """``values`` with each seed's common effect (``offsets``, by default :func:`seed_offsets`) subtracted;
    unchanged where none is known."""
    offsets = seed_offsets(values, groups, seeds) if offsets is None else offsets
    return values - np.array([offsets.get(int(x), 0.0) for x in seeds]) if offsets else values


def noise_floor(values: np.ndarray, groups: np.ndarray, metric: str, seeds: np.ndarray | None = None) -> NoiseFloor:
    """Replicate noise and recipe signal of one metric. ``values`` (n,) may hold NaN (trial lacks the metric).
    With ``seeds`` (n,), the seeds' common effect is removed first (see the module notes) and reported."""
    ok = np.isfinite(values)
    v, g = values[ok], groups[ok]
    n = len(v)
    if n == 0:
        return NoiseFloor(metric, None, None, None, None, 0, 0, 0, None, f"{metric}: no values.")
    _, g = np.unique(g, return_inverse=True)
    k = int(g.max()) + 1
    counts = np.bincount(g, minlength=k).astype(np.float64)
    oneway = _within_std(v, g, counts)
    offsets = {} if seeds is None else seed_offsets(values, groups, seeds)
    seed_std = None
    if seeds is not None and offsets:
        v = without_seed_effects(values, groups, seeds, offsets)[ok]
        seed_std = float(np.std(list(offsets.values()), ddof=1))
    means = np.bincount(g, weights=v, minlength=k) / counts
    ss_within = float(np.sum((v - means[g]) ** 2))
    df_within = n - k - max(len(offsets) - 1, 0)  # each estimated offset beyond the reference costs a degree
    n_rep = int(np.sum(counts >= 2))
    if df_within <= 0:
        spread = float(np.std(means, ddof=1)) if k > 1 else 0.0
        return NoiseFloor(
            metric, None, None, None, None, n, k, n_rep, None,
            f"{metric}: no recipe was trained with more than one seed, so the noise floor is unknown; "
            f"recipes spread by {spread:.4g} (std) but that may be seed noise. Add a replicate stage.",
            seed_std, oneway,
        )  # fmt: skip
    ms_within = ss_within / df_within
    noise = float(np.sqrt(ms_within))
    if k < 2:
        return NoiseFloor(
            metric, noise, None, None, None, n, k, n_rep, None,
            f"{metric}: only one recipe, replicate std {noise:.4g}; nothing to compare.",
            seed_std, oneway,
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
    paired = "" if seed_std is None else (
        f"; the seeds' common effect (std {seed_std:.4g}), which moves every recipe alike, is removed: "
        f"with it the replicate std would be {oneway:.4g}"
    )  # fmt: skip
    if below:
        sentence = (
            f"{metric}: differences between recipes are below the noise floor (replicate std {noise:.4g}, "
            f"recipe signal std {signal:.4g}, p={p:.2g}{paired}); do not read rankings by this metric."
        )
    else:
        sentence = (
            f"{metric}: recipes differ beyond seed noise (signal std {signal:.4g} vs replicate std {noise:.4g}, "
            f"signal-to-noise {snr:.2f}, p={p:.2g}{paired})."
        )
    return NoiseFloor(metric, noise, signal, snr, p, n, k, n_rep, below, sentence, seed_std, oneway)


def _within_std(v: np.ndarray, g: np.ndarray, counts: np.ndarray) -> float | None:
    """The pooled within-group std (one-way), None without a replicated group."""
    df = len(v) - len(counts)
    if df <= 0:
        return None
    means = np.bincount(g, weights=v, minlength=len(counts)) / counts
    return float(np.sqrt(np.sum((v - means[g]) ** 2) / df))


def noise_report(table: TrialTable) -> dict[str, dict]:
    """The noise floor (paired seeds) of the objective and of every metric of a trial table, keyed by name (objective
    first), as findings.json holds it."""
    columns = {"objective": table.objective, **table.metrics}
    return {name: noise_floor(v, table.groups, name, table.seeds).to_dict() for name, v in columns.items()}
