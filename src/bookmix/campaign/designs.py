"""Where the campaign's recipes come from: the recipes room's designs and the analysis' next-round picks.

Round 0 runs the designs listed in the pipeline; later rounds ask the analysis for mutations of the best recipes and
surrogate-guided picks (or, with the analysis off, the ``mutate`` design over the best so far); verification draws
random baselines of the proposal's size. Recipes travel as ``Recipe.to_dict()`` (with their id) from here on.
"""

from __future__ import annotations

from typing import Any


def _dedup(recipes) -> list[dict[str, Any]]:
    out, seen = [], set()
    for r in recipes:
        d = r if isinstance(r, dict) else r.to_dict()
        if d["id"] not in seen:  # two designs can draw the same set; one trial per distinct recipe is enough
            seen.add(d["id"])
            out.append(d)
    return out


def with_shelf(recipes: list[dict[str, Any]], shelf) -> list[dict[str, Any]]:  # noqa: ANN001 - ProbeShelf | None
    """Every recipe reading the campaign's probe shelf (``search.probe_shelf``), or the recipes as they are when it has
    none. The one place a campaign composes the shelf into its recipes: search rounds and verification call it."""
    if shelf is None:
        return recipes
    from bookmix.recipes import Recipe

    out = []
    for r in recipes:
        d = {k: v for k, v in r.items() if k != "id"}
        d["shelf"] = shelf.model_dump(mode="json")
        out.append(Recipe.from_dict(d).to_dict())
    return _dedup(out)


def _run(config: dict[str, Any], lib, where: str) -> list:
    from bookmix.recipes.designs import parse_design, run_design

    return run_design(parse_design(config, where), lib)


def initial_recipes(designs: list[dict[str, Any]], lib) -> list[dict[str, Any]]:
    return _dedup(r for i, d in enumerate(designs) for r in _run(d, lib, f"search.designs[{i}]"))


def next_round_recipes(
    records: list[dict[str, Any]], parents: list[dict[str, Any]], n: int, lib, seed: int, use_analysis: bool
) -> list[dict[str, Any]]:
    """``n`` recipes for a later round. ``records`` carry objectives oriented higher-is-better."""
    if use_analysis:
        from bookmix.analysis import next_round

        return _dedup(next_round(records, n=n, seed=seed, library=lib))
    return _dedup(_run({"design": "mutate", "n": n, "parents": parents, "seed": seed}, lib, "search.rounds"))


def baseline_recipes(proposal: dict[str, Any], n: int, lib, seed: int) -> list[dict[str, Any]]:
    """``n`` random recipes with as many books as the proposal: the distribution the proposal must beat."""
    books = max(1, len(proposal.get("books") or []))
    config = {"design": "random", "n": n, "books_per_set": books, "seed": seed + 1_000_003}
    # Baselines read their books exactly as the proposal reads its own (order, sparsity, grain, epochs), so the
    # comparison is about which books, not about how many tokens or which reading settings.
    if not proposal.get("phases"):
        shared = {k: v for k, v in proposal.items() if k not in ("books", "phases", "seed", "id", "meta")}
        if shared.get("order") == "as_listed":
            shared.pop("order")  # a listing order means nothing for books drawn at random
        if shared:
            config["recipe"] = shared
    return _dedup(_run(config, lib, "verification"))


# Out-of-sample recipes come from the first design with its seed moved this far, away from any search round's seed.
OOS_SEED_OFFSET = 7_777_777


def out_of_sample_recipes(designs: list[dict[str, Any]], n: int, lib, exclude: set[str]) -> list[dict[str, Any]]:
    """``n`` fresh recipes from the first search design with another seed, none equal to a searched recipe."""
    config = dict(designs[0])
    config["seed"] = int(config.get("seed", 0)) + OOS_SEED_OFFSET
    config["n"] = n + min(n, len(exclude))  # spare draws, so n remain after dropping any the search already has
    fresh = [r for r in _dedup(_run(config, lib, "analysis.out_of_sample")) if r["id"] not in exclude]
    return fresh[:n]
