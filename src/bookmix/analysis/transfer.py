"""Scale transfer: does the ranking a small proxy model gives the recipes hold for the larger model the user trains?

    rows = [TransferRow("r1", proxy=[0.41, 0.43], target=[0.62, 0.60]), ...]   # per recipe, one score per seed
    report = transfer_report(rows)              # Spearman, decision accuracy (with intervals), flips, verdict
    compare_proxies({"nano": report_a, "nano lr x5": report_b}, costs)         # which proxy to trust

Every score is oriented higher-is-better (the campaign negates losses). The unit of every interval is the recipe:
the bootstrap resamples recipes, since what the user asks is "would another set of recipes rank alike?". A rank
flip is a pair of recipes that the proxy and the target order oppositely *and* each by more than its own seed noise
(``z`` standard errors of the difference of two recipe means), so a flip is never two noisy near-ties. The verdict
follows the published floor (a proxy is usable when it gets about 80% of pairwise decisions right and its ranking
correlates at ρ ≳ 0.7–0.9 with the large model's): both thresholds are arguments with those defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_SPEARMAN = 0.7
"""Default verdict threshold on the proxy-target Spearman (Olmix: 1M-parameter proxies reach 0.73, 15M+ > 0.89)."""
MIN_ACCURACY = 0.75
"""Default verdict threshold on pairwise decision accuracy (DataDecide: a good proxy decides ~80% of pairs right)."""
FLIP_Z = 1.96
"""A difference counts as beyond the seed noise when it exceeds this many standard errors (two-sided 95%)."""


@dataclass(frozen=True)
class TransferRow:
    """One recipe's scores (higher is better), one per seed, at the proxy and at the target."""

    recipe_id: str
    proxy: Sequence[float]
    target: Sequence[float]
    role: str = ""
    """Why the recipe was chosen: ``top``, ``bottom``, ``random`` or ``proposal`` (optional)."""


def check_rows(rows: Sequence[TransferRow]) -> None:
    """Clear errors for input no statistic can be read from."""
    ids = [r.recipe_id for r in rows]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"transfer rows: recipe {dup[0]!r} appears more than once")
    for r in rows:
        for side in ("proxy", "target"):
            vals = list(getattr(r, side))
            if not vals:
                raise ValueError(f"transfer rows: recipe {r.recipe_id!r} has no {side} score")
            if not all(math.isfinite(float(v)) for v in vals):
                raise ValueError(f"transfer rows: recipe {r.recipe_id!r} has a non-finite {side} score")
    if len(rows) < 3:
        raise ValueError(f"transfer rows: need at least 3 recipes to compare rankings, got {len(rows)}")


def means(rows: Sequence[TransferRow]) -> tuple[np.ndarray, np.ndarray]:
    """Per-recipe mean score at the proxy and at the target: (n,), (n,)."""
    return (np.array([float(np.mean(r.proxy)) for r in rows]), np.array([float(np.mean(r.target)) for r in rows]))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Rank correlation; None when either side is constant (no ranking to compare)."""
    from scipy import stats

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y).statistic)


def decision_accuracy(x: np.ndarray, y: np.ndarray) -> float | None:
    """Share of recipe pairs the proxy ``x`` orders as the target ``y`` does (target ties skipped, proxy ties ½)."""
    i, j = np.triu_indices(len(x), k=1)
    keep = y[i] != y[j]
    if not keep.any():
        return None
    agree = np.sign(x[i] - x[j])[keep] * np.sign(y[i] - y[j])[keep]
    return float(np.mean((agree + 1.0) / 2.0))


def bootstrap_intervals(x: np.ndarray, y: np.ndarray, n_boot: int = 1000, seed: int = 0,
                        level: float = 0.95) -> dict[str, list[float] | None]:  # fmt: skip
    """Percentile intervals of Spearman and decision accuracy, resampling recipes with replacement (a recipe drawn
    twice makes a pair with itself, which decides nothing and is skipped)."""
    rng = np.random.default_rng(seed)
    n = len(x)
    rho, acc = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        r, a = spearman(x[idx], y[idx]), decision_accuracy(x[idx], y[idx])
        if r is not None:
            rho.append(r)
        if a is not None:
            acc.append(a)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]

    def ci(v: list[float]) -> list[float] | None:
        return [float(b) for b in np.percentile(v, q)] if len(v) >= max(10, n_boot // 10) else None

    return {"spearman": ci(rho), "accuracy": ci(acc)}


def seed_sd(scores: Sequence[Sequence[float]]) -> float | None:
    """Pooled within-recipe (seed) standard deviation over the recipes with two or more seeds; None when none has."""
    ss, df = 0.0, 0
    for seeds in scores:
        s = np.asarray(seeds, dtype=float)
        if len(s) >= 2:
            ss += float(np.sum((s - s.mean()) ** 2))
            df += len(s) - 1
    return math.sqrt(ss / df) if df else None


def rank_flips(rows: Sequence[TransferRow], z: float = FLIP_Z) -> dict[str, Any]:
    """Pairs the proxy and the target order oppositely, each difference beyond ``z`` standard errors of its own seed
    noise (pooled seed SD over √seeds of each recipe). Without seeds on a side, no difference can be shown beyond
    noise there and no flip is counted (``noise_known`` says so)."""
    x, y = means(rows)
    sd_p = seed_sd([r.proxy for r in rows])
    sd_t = seed_sd([r.target for r in rows])
    n_p = np.array([len(r.proxy) for r in rows], dtype=float)
    n_t = np.array([len(r.target) for r in rows], dtype=float)
    flips: list[dict[str, Any]] = []
    opposite = 0
    i_all, j_all = np.triu_indices(len(rows), k=1)
    for i, j in zip(i_all.tolist(), j_all.tolist(), strict=True):
        dp, dt = x[i] - x[j], y[i] - y[j]
        if dp * dt >= 0:
            continue
        opposite += 1
        if sd_p is None or sd_t is None:
            continue
        se_p = sd_p * math.sqrt(1 / n_p[i] + 1 / n_p[j])
        se_t = sd_t * math.sqrt(1 / n_t[i] + 1 / n_t[j])
        if abs(dp) > z * se_p and abs(dt) > z * se_t:
            flips.append({"a": rows[i].recipe_id, "b": rows[j].recipe_id, "proxy_diff": float(dp),
                          "target_diff": float(dt), "proxy_z": float(abs(dp) / se_p) if se_p else None,
                          "target_z": float(abs(dt) / se_t) if se_t else None})  # fmt: skip
    pairs = len(i_all)
    return {"pairs": pairs, "opposite": opposite, "flips": flips, "n_flips": len(flips),
            "flip_rate": len(flips) / pairs if pairs else 0.0, "z": z, "noise_known": sd_p is not None and sd_t is not None,
            "proxy_seed_sd": sd_p, "target_seed_sd": sd_t}  # fmt: skip


def proposal_advantage(rows: Sequence[TransferRow], proposal: str | None) -> dict[str, Any] | None:
    """The proposal against the random recipes (role ``random``) at both sizes: its score minus their mean, and the
    share of them it beats. ``holds`` when the target advantage is positive and at least half of the proxy's share of
    wins survives. None when the proposal or the random recipes are not among the rows."""
    by_id = {r.recipe_id: r for r in rows}
    rand = [r for r in rows if r.role == "random" and r.recipe_id != proposal]
    if proposal is None or proposal not in by_id or not rand:
        return None
    p = by_id[proposal]
    out: dict[str, Any] = {"proposal": proposal, "random_recipes": len(rand)}
    for side in ("proxy", "target"):
        mine = float(np.mean(getattr(p, side)))
        others = np.array([float(np.mean(getattr(r, side))) for r in rand])
        out[side] = {"advantage": mine - float(others.mean()), "beats": float(np.mean(mine > others))}
    out["holds"] = bool(out["target"]["advantage"] > 0 and out["target"]["beats"] >= 0.5 * out["proxy"]["beats"])
    return out


def finding_signs(found: Mapping[str, Sequence[Mapping[str, Any]]],
                  at_target: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:  # fmt: skip
    """Which of the campaign's clear findings keep their sign at the target.

    ``found`` and ``at_target``: ``{"books": [...], "groups": [...], "factors": [...]}`` as findings.json writes them
    (a row has ``book``/``group``/``factor``, ``effect`` and ``ci``). A campaign finding is *clear* when its interval
    excludes zero; it is checked against the effect the same analysis fitted on the target's trials: ``kept`` (same
    sign), ``reversed``, or ``unmeasured`` (the target's trials could not estimate it)."""
    keys = {"books": "book", "groups": "group", "factors": "factor"}
    out: list[dict[str, Any]] = []
    for kind, key in keys.items():
        target = {str(r.get(key)): r for r in at_target.get(kind) or []}
        for row in found.get(kind) or []:
            ci = row.get("ci") or [None, None]
            if ci[0] is None or ci[1] is None or (ci[0] <= 0 <= ci[1]):
                continue
            name = str(row.get(key))
            t = target.get(name)
            eff = None if t is None else t.get("effect")
            if eff is None or eff == 0:
                status = "unmeasured"
            else:
                status = "kept" if (eff > 0) == (row["effect"] > 0) else "reversed"
            out.append({"kind": kind[:-1], "name": name, "proxy_effect": float(row["effect"]),
                        "target_effect": None if eff is None else float(eff), "status": status})  # fmt: skip
    return out


@dataclass
class TransferReport:
    """Everything the transfer analysis says about one proxy setting against the target."""

    n_recipes: int
    spearman: float | None
    spearman_ci: list[float] | None
    accuracy: float | None
    accuracy_ci: list[float] | None
    flips: dict[str, Any]
    proposal: dict[str, Any] | None
    findings: list[dict[str, Any]]
    verdict: str
    reason: str
    points: list[dict[str, Any]] = field(default_factory=list)
    """One per recipe: id, role, proxy and target mean, seeds at each: the dashboard's scatter."""

    def to_dict(self) -> dict[str, Any]:
        return {"n_recipes": self.n_recipes, "spearman": self.spearman, "spearman_ci": self.spearman_ci,
                "accuracy": self.accuracy, "accuracy_ci": self.accuracy_ci, "flips": self.flips,
                "proposal": self.proposal, "findings": self.findings, "verdict": self.verdict, "reason": self.reason,
                "points": self.points}  # fmt: skip


def verdict(rho: float | None, acc: float | None, min_spearman: float = MIN_SPEARMAN,
            min_accuracy: float = MIN_ACCURACY) -> tuple[str, str]:  # fmt: skip
    """``transfers`` when Spearman ≥ min_spearman and decision accuracy ≥ min_accuracy, else ``does not transfer``;
    with the reason in words."""
    if rho is None or acc is None:
        return "does not transfer", "no ranking to compare (a side scored every recipe alike)"
    ok = rho >= min_spearman and acc >= min_accuracy
    why = (f"Spearman {rho:.2f} {'≥' if rho >= min_spearman else '<'} {min_spearman:g}, decision accuracy "
           f"{acc:.0%} {'≥' if acc >= min_accuracy else '<'} {min_accuracy:.0%}")  # fmt: skip
    return ("transfers" if ok else "does not transfer"), why


def transfer_report(
    rows: Sequence[TransferRow],
    proposal: str | None = None,
    found: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    at_target: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_spearman: float = MIN_SPEARMAN,
    min_accuracy: float = MIN_ACCURACY,
    z: float = FLIP_Z,
) -> TransferReport:
    """The whole comparison of one proxy with the target over the same recipes (see the module docstring)."""
    check_rows(rows)
    x, y = means(rows)
    rho, acc = spearman(x, y), decision_accuracy(x, y)
    ci = bootstrap_intervals(x, y, n_boot, seed)
    v, why = verdict(rho, acc, min_spearman, min_accuracy)
    points = [{"recipe": r.recipe_id, "role": r.role, "proxy": float(a), "target": float(b), "proxy_seeds": len(r.proxy),
               "target_seeds": len(r.target)} for r, a, b in zip(rows, x, y, strict=True)]  # fmt: skip
    signs = finding_signs(found, at_target) if found is not None and at_target is not None else []
    return TransferReport(len(rows), rho, ci["spearman"], acc, ci["accuracy"], rank_flips(rows, z),
                          proposal_advantage(rows, proposal), signs, v, why, points)  # fmt: skip


def compare_proxies(reports: Mapping[str, TransferReport], costs: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Name the proxy to trust: the cheapest (by ``costs``, e.g. parameters × tokens) among those that transfer, else
    the one with the highest Spearman. Returns ``{best, cheapest_transferring, why, table}``."""
    if not reports:
        raise ValueError("compare_proxies: no proxy reports")
    costs = costs or {}
    table = [{"proxy": name, "spearman": r.spearman, "accuracy": r.accuracy, "verdict": r.verdict,
              "cost": costs.get(name), "flips": r.flips["n_flips"]} for name, r in reports.items()]  # fmt: skip

    def score(name: str) -> float:
        s = reports[name].spearman
        return -2.0 if s is None else s

    best = max(reports, key=score)
    ok = [n for n, r in reports.items() if r.verdict == "transfers"]
    cheapest = min(ok, key=lambda n: (costs.get(n, math.inf), -score(n))) if ok else None
    if cheapest is not None:
        why = f"{cheapest} is the cheapest proxy that transfers" + (
            "" if cheapest == best else f"; {best} agrees best with the target"
        )
    else:
        why = f"no proxy transfers; {best} agrees best with the target"
    return {"best": best, "cheapest_transferring": cheapest, "why": why, "table": table}


def summary_sentence(name: str, r: TransferReport, target: str) -> str:
    """One plain sentence for findings and the dashboard."""

    def fmt(v: float | None, ci: list[float] | None, pct: bool = False) -> str:
        if v is None:
            return "n/a"
        f = (lambda a: f"{a:.0%}") if pct else (lambda a: f"{a:.2f}")
        return f(v) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci else "")

    return (f"Proxy {name} → {target}: {r.verdict} over {r.n_recipes} recipes (Spearman {fmt(r.spearman, r.spearman_ci)}, "
            f"decision accuracy {fmt(r.accuracy, r.accuracy_ci, True)}, {r.flips['n_flips']} rank flip(s) beyond the "
            f"seed noise of {r.flips['pairs']} pairs).")  # fmt: skip
