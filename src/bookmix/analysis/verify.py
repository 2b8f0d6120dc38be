"""Verification statistics: is the proposal better than random recipes of the same size?

The unit is the **recipe**, not the trial. A baseline recipe trained over S seeds is one draw from "a random recipe of
this size", and its S trials share that draw: counting them as S independent values (as a trial-level test would)
claims a precision the design does not have. So every recipe is first averaged over its seeds, and then:

- ``improvement``: proposal mean − mean of the baseline recipe means (higher is better), with a seeded percentile
  bootstrap interval that resamples baseline *recipes* and the proposal's seeds;
- ``improvement_sd``: the same in units of the spread (std) of the baseline recipe means: how far outside the cloud of
  random recipes the proposal lands;
- ``percentile``: the share of baseline recipes the proposal beats (ties count half), in percent;
- ``p_value``: one-sided prediction-interval t-test with R − 1 degrees of freedom, "the proposal is a draw from the
  baseline recipes' distribution": t = (proposal − mean) / (sd · sqrt(1 + 1/R)). Normal-theory, and able to go below
  1/(R + 1) when the proposal lies far outside the cloud;
- ``p_rank``: the exact, assumption-free rank test (1 + baselines at least as good) / (R + 1); its floor
  ``p_rank_min`` = 1/(R + 1) is the smallest p the design can reach, printed so that nobody reads "p = 0.25" from
  three baselines as a failure of the proposal rather than of the design.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
from scipy import stats

from bookmix.errors import BookmixError

# 10,000 draws put the Monte-Carlo error of an interval end at a fraction of a percent of its width, in milliseconds.
N_DRAWS = 10_000


def _clean(values: Sequence[float], name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise BookmixError(f"{name}: no objectives to compare")
    if not np.all(np.isfinite(x)):
        raise BookmixError(f"{name}: objectives must be finite numbers")
    return x


def _recipes(
    baselines: Sequence[Sequence[float]] | Sequence[float] | Mapping[str, Sequence[float]],
) -> list[np.ndarray]:
    """Baseline objectives per recipe. A flat list of numbers is one recipe per number (one seed each)."""
    groups = list(baselines.values()) if isinstance(baselines, Mapping) else list(baselines)
    if not groups:
        raise BookmixError("baseline_objectives: no baseline recipes to compare")
    out = []
    for i, g in enumerate(groups):
        out.append(_clean(cast(Sequence[float], [g] if np.isscalar(g) else g), f"baseline_objectives[{i}]"))
    return out


def verify_stats(
    proposal_objectives: Sequence[float],
    baseline_objectives: Sequence[Sequence[float]] | Sequence[float] | Mapping[str, Sequence[float]],
    seed: int = 0,
    level: float = 0.95,
    draws: int = N_DRAWS,
) -> dict[str, float | list[float] | int | None]:
    """Recipe-level comparison of a proposal (its seeds' objectives) with baseline recipes (each a list of its seeds'
    objectives, or a mapping recipe id → objectives); objectives are oriented higher-is-better.

    Returns ``{improvement, ci, improvement_sd, percentile, p_value, p_rank, p_rank_min, n_proposal, n_baseline,
    n_baseline_trials}``; ``n_baseline`` counts recipes, the unit of every test here.
    """
    a = _clean(proposal_objectives, "proposal_objectives")
    recipes = _recipes(baseline_objectives)
    means = np.array([g.mean() for g in recipes])  # (R,)
    r = means.size
    prop = float(a.mean())
    improvement = prop - float(means.mean())
    sd = float(means.std(ddof=1)) if r > 1 else float("nan")

    rng = np.random.default_rng(seed)
    boot = a[rng.integers(0, a.size, (draws, a.size))].mean(1) - means[rng.integers(0, r, (draws, r))].mean(1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])

    better = np.sum(means < prop) + 0.5 * np.sum(means == prop)
    p_rank = float((1 + np.sum(means >= prop)) / (r + 1))
    if r > 1 and sd > 0:
        t = improvement / (sd * np.sqrt(1.0 + 1.0 / r))
        p_t: float | None = float(stats.t.sf(t, df=r - 1))
    elif r > 1:  # every baseline recipe scored the same: any difference is certain, none is impossible to call
        p_t = 0.0 if improvement > 0 else 1.0
    else:
        p_t = None  # one baseline recipe: no spread, no test
    return {
        "improvement": improvement,
        "ci": [float(lo), float(hi)],
        "improvement_sd": improvement / sd if r > 1 and sd > 0 else None,
        "percentile": float(100.0 * better / r),
        "p_value": p_t,
        "p_rank": p_rank,
        "p_rank_min": 1.0 / (r + 1),
        "n_proposal": int(a.size),
        "n_baseline": int(r),
        "n_baseline_trials": int(sum(g.size for g in recipes)),
    }


def verify_sentence(v: Mapping[str, object]) -> str:
    """One plain sentence about a verification result (the summary, the CLI and the report print it)."""
    p = v.get("p_value")
    sd = v.get("improvement_sd")
    parts = [
        f"The proposal scored {v['improvement']:+.4g} against the mean of {v['n_baseline']} random recipes of its size "
        f"(95% CI {v['ci'][0]:+.4g} to {v['ci'][1]:+.4g})",  # type: ignore[index]
    ]
    if sd is not None:
        parts.append(f"{sd:+.2f} baseline SDs, above {v['percentile']:.0f}% of them")
    parts.append(f"p = {p:.3g} (recipe as the unit)" if p is not None else "no p-value with one baseline recipe")
    parts.append(f"rank test p = {v['p_rank']:.3g}, the smallest this design can reach is {v['p_rank_min']:.3g}")
    return "; ".join(parts) + "."
