"""Signal-to-noise per metric and per objective term: which scores tell recipes apart, and which only tell seeds apart.

An objective is a weighted sum of metrics. A term whose recipe spread is below its seed spread adds seed noise to the
ranking, not signal about the datasets; this table is how a term is checked before it is trusted (and how the shipped
suite's objective was chosen). Per metric, from replicate groups (trials of the same recipe with other seeds):

  recipe_spread   the noise-corrected std of the recipes' true means (one-way ANOVA, :mod:`bookmix.analysis.noise`)
  seed_spread     the pooled std between seeds of one recipe, each seed's common effect removed (paired seeds), one-way: everything a seed does, its common effect on
                  every recipe included (``findings.noise`` also gives the paired floor with that effect removed;
                  this one is the conservative figure, and needs only one replicated recipe)
  ratio           recipe_spread / seed_spread: above 1, recipes differ by more than seeds do
  weighted_spread |weight| × recipe_spread: the term's share of the objective's signal (objective terms only)

Input is the campaign's records (``{recipe, seed, metrics, objective, ...}``), so it runs anywhere the records are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bookmix.analysis.noise import noise_floor
from bookmix.analysis.recipe_fields import recipe_key

RELIABLE = 1.0
"""A term is called reliable when its recipe spread exceeds its seed spread and the F-test says recipes differ."""


def metric_snr(
    records: Sequence[Mapping[str, Any]], weights: Mapping[str, float] | None = None, breakdowns: bool = False
) -> list[dict[str, Any]]:
    """One row per metric: ``{metric, weight, recipe_spread, seed_spread, ratio, p_value, n_recipes, n_replicated,
    reliable, weighted_spread}``. The objective comes first, then the objective's terms in their order, then every
    other metric by falling ratio. Breakdowns (``acc@lang=ru``) only with ``breakdowns``."""
    weights = dict(weights or {})
    groups = np.unique(np.array([recipe_key(r["recipe"]) for r in records]), return_inverse=True)[1]
    seeds = np.array([int(r.get("seed", 0) or 0) for r in records], dtype=np.int64)
    names = {n for r in records for n in (r.get("metrics") or {}) if breakdowns or "@" not in n} | set(weights)

    def column(name: str) -> np.ndarray:
        got = [r.get("objective") if name == "objective" else (r.get("metrics") or {}).get(name) for r in records]
        return np.array([np.nan if v is None else float(v) for v in got], dtype=np.float64)

    rows = []
    for name in ["objective", *sorted(names)]:
        values = column(name)
        nf = noise_floor(values, groups, name, seeds)
        w = weights.get(name)
        ratio = nf.snr
        if nf.replicate_std == 0 and not nf.signal_std:
            ratio = None  # the same value in every trial (an accuracy stuck at 0): no signal, no noise, no ratio
        rows.append(
            {
                "metric": name,
                "weight": w,
                "recipe_spread": nf.signal_std,
                "seed_spread": nf.replicate_std,
                "ratio": ratio,
                "p_value": nf.p_value,
                "n_recipes": nf.n_recipes,
                "n_replicated": nf.n_replicated,
                "reliable": None if ratio is None else bool(ratio > RELIABLE and nf.below_noise is False),
                "weighted_spread": None if w is None or nf.signal_std is None else abs(w) * nf.signal_std,
            }
        )
    order = {n: i for i, n in enumerate(weights)}
    rows.sort(key=lambda r: (r["metric"] != "objective", r["metric"] not in order, order.get(str(r["metric"]), 0),
                             -float(r["ratio"] if r["ratio"] is not None else -1.0)))  # fmt: skip
    return rows


def terms_sentence(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """One line for the summary: each objective term's ratio, and the terms that only add seed noise."""
    terms = [r for r in rows if r["weight"] is not None]
    if not terms or all(r["ratio"] is None for r in terms):
        return None

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    parts = ", ".join(f"{r['metric']} {fmt(r['ratio'])}" for r in terms)
    weak = [r["metric"] for r in terms if r["reliable"] is False]
    line = f"Objective terms, recipe spread ÷ seed spread: {parts}."
    if weak:
        line += f" Not above seed noise: {', '.join(weak)} (they add noise to the ranking; reweight or drop them)."
    return line
