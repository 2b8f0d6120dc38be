"""Fixtures of the analysis tests: synthetic campaigns with a planted truth, made of real Recipes.

objective = sum of true book effects + order effect + sparsity effect + seed noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from bookmix.recipes.recipe import Recipe

ORDERS = ("random", "interleave")  # both valid with grain 'windows'
ORDER_EFFECT = {"random": 0.0, "interleave": 0.3}


@dataclass
class Planted:
    records: list[dict]
    book_ids: list[str]
    effects: dict[str, float]
    catalog: dict[str, np.ndarray]


def book_id(i: int) -> str:
    return f"{i:016x}"


def planted_campaign(
    n_books: int = 40, n_recipes: int = 150, per_set: int = 10, seeds: int = 2, noise: float = 0.05, seed: int = 0,
    keep_levels: tuple[float, ...] = (1.0,),
) -> Planted:  # fmt: skip
    rng = np.random.default_rng(seed)
    ids = [book_id(i) for i in range(n_books)]
    effects = rng.normal(0.0, 0.1, n_books)
    records: list[dict] = []
    for r in range(n_recipes):
        chosen = rng.choice(n_books, per_set, replace=False)
        order = ORDERS[r % len(ORDERS)]
        keep = keep_levels[(r // 2) % len(keep_levels)]
        recipe = Recipe.from_dict(
            {"books": [ids[i] for i in chosen], "order": order, "sparsity": {"keep": keep}, "seed": r}
        ).to_dict()
        truth = effects[chosen].sum() + ORDER_EFFECT[order] - 0.2 * (1.0 - keep)
        for s in range(seeds):
            y = truth + rng.normal(0.0, noise)
            records.append({
                "trial_id": f"t{r}-{s}", "recipe": recipe, "seed": s, "stage": "explore" if s == 0 else "replicate",
                "objective": float(y), "objective_stderr": 0.01,
                "metrics": {"loss": float(3.0 - y), "acc": float(0.5 + 0.1 * y + rng.normal(0, 0.01))},
            })  # fmt: skip
    catalog = {
        "id": np.array(ids, dtype=object),
        "title": np.array([f"Book {i}" for i in range(n_books)], dtype=object),
        "tokens": rng.integers(1000, 100000, n_books),
        "year": rng.integers(1800, 2000, n_books).astype(float),
        "lang": np.array(["en" if i % 3 else "ru" for i in range(n_books)], dtype=object),
    }
    return Planted(records, ids, dict(zip(ids, effects, strict=True)), catalog)


@pytest.fixture(scope="session")
def planted():
    """A function (``**kwargs``) -> Planted; the default campaign is shared by the tests that only read it."""
    return planted_campaign


@pytest.fixture(scope="session")
def default_campaign() -> Planted:
    return planted_campaign(keep_levels=(1.0, 0.5))


@pytest.fixture(scope="session")
def default_findings(default_campaign):
    from bookmix.analysis import analyze

    return analyze(default_campaign.records, default_campaign.catalog)
