"""Signal-to-noise per metric and per objective term: which scores tell recipes apart, and which only tell seeds apart.

An objective is a weighted sum of metrics. A term whose recipe spread is below its seed spread adds seed noise to the
ranking, not signal about the datasets; this table is how a term is checked before it is trusted (and how the shipped
suite's objective was chosen). Per metric, read from the analysis's noise floors (:mod:`bookmix.analysis.noise`,
paired seeds), so every figure here is the one ``findings.noise`` holds:

  recipe_spread       the noise-corrected std of the recipes' true means
  seed_spread         the pooled std between seeds of one recipe, each seed's common effect removed
  seed_common_spread  the std of that common effect (it moves every recipe alike, so it cannot reorder them)
  ratio               recipe_spread / seed_spread: above 1, recipes differ by more than seeds do
  weighted_spread     |weight| × recipe_spread: the term's share of the objective's signal (objective terms only)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RELIABLE = 1.0
"""A term is called reliable when its recipe spread exceeds its seed spread and the F-test says recipes differ."""


def metric_snr(
    noise: Mapping[str, Mapping[str, Any]], weights: Mapping[str, float] | None = None, breakdowns: bool = False
) -> list[dict[str, Any]]:
    """One row per metric of a noise report (:func:`bookmix.analysis.noise.noise_report`, as findings.json holds it):
    ``{metric, weight, recipe_spread, seed_spread, seed_common_spread, ratio, p_value, n_recipes, n_replicated,
    reliable, weighted_spread}``. The objective comes first, then the objective's terms in their order, then every
    other metric by falling ratio. Breakdowns (``acc@lang=ru``) only with ``breakdowns``; a weighted metric no trial
    has gets a row of unknowns."""
    weights = dict(weights or {})
    names = {n for n in noise if n != "objective" and (breakdowns or "@" not in n)} | set(weights)
    rows = []
    for name in ["objective", *sorted(names)]:
        nf = noise.get(name) or {}
        w = weights.get(name)
        signal, seed_spread, ratio = nf.get("signal_std"), nf.get("replicate_std"), nf.get("snr")
        if seed_spread == 0 and not signal:
            ratio = None  # the same value in every trial (an accuracy stuck at 0): no signal, no noise, no ratio
        rows.append(
            {
                "metric": name,
                "weight": w,
                "recipe_spread": signal,
                "seed_spread": seed_spread,
                "seed_common_spread": nf.get("seed_std"),
                "ratio": ratio,
                "p_value": nf.get("p_value"),
                "n_recipes": nf.get("n_recipes", 0),
                "n_replicated": nf.get("n_replicated", 0),
                "reliable": None if ratio is None else bool(ratio > RELIABLE and nf.get("below_noise") is False),
                "weighted_spread": None if w is None or signal is None else abs(w) * signal,
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
