"""The leaderboard: trials grouped by recipe, ranked by the mean objective, with an honest error bar.

A recipe trained with several seeds gets the standard error of its seed mean (seed noise, which already contains
the evaluation's sampling noise); a recipe with one trial gets that trial's evaluation stderr, the only error known
for it. Pure: plain rows in, plain rows out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def recipe_settings(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a person compares recipes by (books are listed separately)."""
    sparsity = recipe.get("sparsity") or {}
    phases = recipe.get("phases") or None
    books = list(recipe.get("books") or [])
    if phases and not books:
        books = sorted({b for ph in phases for b in (ph.get("books") or [])})
    return {
        "books": books,
        "n_books": len(books),
        "order": recipe.get("order", "as_listed" if phases else "random"),
        "phases": [{"order": ph.get("order"), "books": list(ph.get("books") or [])} for ph in phases]
        if phases
        else None,
        "keep": sparsity.get("keep", 1.0),
        "pattern": sparsity.get("pattern", "stride"),
        "chunk_tokens": sparsity.get("chunk_tokens"),
        "grain": recipe.get("grain", "windows"),
        "epochs": recipe.get("epochs", 1),
        "design": (recipe.get("meta") or {}).get("design"),
    }


def leaderboard(
    trials: Sequence[Mapping[str, Any]],
    recipes: Mapping[str, Mapping[str, Any]],
    maximize: bool,
) -> list[dict[str, Any]]:
    """One row per recipe that has trials, best first (recipes without a finished trial last, by id).

    ``trials``: rows with ``id, recipe_id, state, objective, objective_stderr, stage``; ``recipes``: id → recipe dict.
    """
    ids = sorted({str(t["recipe_id"]) for t in trials})
    if not ids:
        return []
    index = {r: i for i, r in enumerate(ids)}
    k = len(ids)
    done = [t for t in trials if t["state"] == "completed" and _finite(t["objective"])]
    g = np.array([index[str(t["recipe_id"])] for t in done], dtype=np.int64)
    y = np.array([float(t["objective"]) for t in done], dtype=np.float64)
    eval_se = np.array([_float(t.get("objective_stderr")) for t in done], dtype=np.float64)

    n = np.bincount(g, minlength=k).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=y, minlength=k) / n
        ss = np.bincount(g, weights=(y - mean[g]) ** 2, minlength=k)
        seed_se = np.sqrt(ss / np.maximum(n - 1, 1) / n)
    single_se = np.full(k, np.nan)
    single = n[g] == 1 if len(g) else np.zeros(0, dtype=bool)
    single_se[g[single]] = eval_se[single]
    stderr = np.where(n >= 2, seed_se, single_se)

    by_recipe: dict[str, list[Mapping[str, Any]]] = {r: [] for r in ids}
    for t in trials:
        by_recipe[str(t["recipe_id"])].append(t)

    # Best first: higher mean when maximising, lower when minimising; unfinished recipes after all finished ones.
    key = np.where(n > 0, -mean if maximize else mean, np.inf)
    order = np.lexsort((np.array(ids), key))
    rows = []
    for rank, i in enumerate(order.tolist(), start=1):
        rid = ids[i]
        ts = by_recipe[rid]
        stages = sorted({str(t.get("stage")) for t in ts})
        rows.append(
            {
                "id": rid,
                "rank": rank if n[i] > 0 else None,
                "mean": _json(mean[i]) if n[i] > 0 else None,
                "stderr": _json(stderr[i]) if n[i] > 0 else None,
                "n_completed": int(n[i]),
                "n_trials": len(ts),
                "states": {s: sum(1 for t in ts if t["state"] == s) for s in sorted({t["state"] for t in ts})},
                "stages": stages,
                "trials": [str(t["id"]) for t in ts],
                **recipe_settings(recipes.get(rid) or {}),
            }
        )
    return rows


def _finite(x: Any) -> bool:
    return x is not None and np.isfinite(float(x))


def _float(x: Any) -> float:
    return float(x) if _finite(x) else np.nan


def _json(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
