"""Proof that the analysis finds real, planted patterns: storyworld campaigns of 64 trials, on five untuned seeds.

The world plants which books teach the facts that the fact_recall items ask (fact books, per the manifest) and which
books contradict them (misleading books). Each trial trains a model on a real Recipe's books and scores the real
items. The model here is the storyworld's word 5-gram scorer (its model-agnostic learnability check), not a nano LM:
a trial takes 0.1 s instead of a minute on two CPU cores, and the analysis sees the same kind of record either way.
Seed noise: each seed scores a different random 70% of the items, as a replicate's evaluation would differ.

The settings (40 books, sets of 12, 48 recipes of which 16 replicated) were chosen on world seed 0. The test runs on
world seeds 1-5, which were never used to choose anything. When this was written: AUC 0.963, 0.966, 1.000, 0.997,
1.000 (the issue asks >= 0.9 on each); two independent campaigns per world agreed on the book effects at Spearman
0.81, 0.78, 0.64, 0.68, 0.71, and their own split halves had predicted 0.73, 0.65, 0.61, 0.68, 0.72 (mean of the two).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bookmix.analysis import AnalysisConfig, Constraints, analyze, propose, verify_stats
from bookmix.recipes.recipe import Recipe
from bookmix.storyworld import generate
from bookmix.storyworld.learnability import accuracy
from bookmix.storyworld.ngram import NGramScorer

TASK = "fact_recall"
SET_SIZE = 12
EXPLORE, REPLICATED = 48, 16  # 48 recipes, 16 of them with a second seed: 64 trials
UNTUNED_SEEDS = (1, 2, 3, 4, 5)


class World:
    """A generated world, its training books' texts and the fact_recall items; trials are 5-gram scorers."""

    def __init__(self, root, seed: int):
        self.world = generate(root / "world", books=40, seed=seed, tokens_per_book=4000)
        self.train = self.world.book_names(holdout=False)
        self.texts = {n: self.world.book_path(n).read_text(encoding="utf-8") for n in self.train}
        self.items = self.world.items(TASK)
        self.helpful = {b for it in self.items for b in it.helps}
        self.misleading = set(self.world.book_names(kind="misleading", holdout=False))

    def trial(self, recipe: Recipe, seed: int) -> float:
        rng = np.random.default_rng(seed)
        score, _ = accuracy(NGramScorer([self.texts[b] for b in recipe.books]), self.items)
        keep = rng.random(len(self.items)) < 0.7
        return float(score[keep].mean())

    def random_recipe(self, rng: np.random.Generator, seed: int) -> Recipe:
        return Recipe.from_dict({"books": list(rng.choice(self.train, SET_SIZE, replace=False)), "seed": seed})

    def campaign(self, seed: int) -> list[dict]:
        rng = np.random.default_rng(seed)
        records = []
        for r in range(EXPLORE):
            recipe = self.random_recipe(rng, r)
            for s in range(2 if r < REPLICATED else 1):
                records.append({
                    "trial_id": f"{r}-{s}", "recipe": recipe.to_dict(), "seed": s,
                    "stage": "search" if s == 0 else "replicate",
                    "objective": self.trial(recipe, seed=100_000 * seed + 1000 * r + s), "objective_stderr": None,
                    "metrics": {},
                })  # fmt: skip
        assert len(records) == EXPLORE + REPLICATED
        return records


@pytest.fixture(scope="module", params=UNTUNED_SEEDS, ids=[f"world{s}" for s in UNTUNED_SEEDS])
def world(request, tmp_path_factory):
    return request.param, World(tmp_path_factory.mktemp(f"sw{request.param}"), request.param)


def _auc(effect: dict[str, float], positive: set[str]) -> float:
    pos = np.array([effect[b] for b in effect if b in positive])
    neg = np.array([effect[b] for b in effect if b not in positive])
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


@pytest.mark.slow
def test_storyworld_campaign_ranks_planted_books_and_proposal_beats_baselines(world):
    seed, w = world
    findings = analyze(w.campaign(seed), None, AnalysisConfig(seed=seed))

    # Helpful (fact) books above the rest: ROC AUC of the effect as a helpful-vs-other classifier.
    effect = {b["book"]: b["effect"] for b in findings.books}
    auc = _auc(effect, w.helpful)
    ranked = [b["book"] for b in findings.books]
    mis_pct = np.mean([ranked.index(b) / (len(ranked) - 1) for b in w.misleading if b in effect])
    print(f"\nworld {seed}: AUC helpful-vs-other {auc:.3f}; misleading mean rank percentile {mis_pct:.2f} "
          f"(0 = top, 1 = bottom); datamodel validity {findings.validity['datamodel']}")  # fmt: skip
    assert auc >= 0.9
    assert mis_pct >= 0.6  # the misleading books sit low (0.72-0.83 on these seeds when written)
    assert findings.validity["datamodel"]["spearman"] > 0.5

    # Verification, the recipe as the unit: the proposal against 12 random recipes of its size, 2 seeds each.
    rng = np.random.default_rng(10_000 + seed)
    prop = propose(findings, constraints=Constraints(set_size=SET_SIZE)).recipe
    prop_obj = [w.trial(prop, seed=90_000 + s) for s in range(2)]
    base_obj = [[w.trial(w.random_recipe(rng, 500 + i), seed=91_000 + 10 * i + s) for s in range(2)] for i in range(12)]
    v = verify_stats(prop_obj, base_obj, seed=0)
    print(f"verification: proposal {np.mean(prop_obj):.3f} vs baselines {np.mean(base_obj):.3f}: {v}")
    assert v["n_baseline"] == 12 and v["percentile"] == 100.0
    assert v["improvement"] > 0 and v["ci"][0] > 0 and v["p_value"] < 0.05
    assert v["p_rank"] == pytest.approx(1 / 13)  # the design's floor, reached


@pytest.mark.slow
def test_split_half_predicts_the_agreement_of_an_independent_campaign(world):
    """Two campaigns on the same world with other recipes and seeds: the agreement each predicted from its own split
    halves must land near the agreement they actually show, and the placebo must collapse."""
    seed, w = world
    a = analyze(w.campaign(10 * seed + 1), None, AnalysisConfig(seed=1, n_boot=0, propose=False))
    b = analyze(w.campaign(10 * seed + 2), None, AnalysisConfig(seed=2, n_boot=0, propose=False))
    ea = {x["book"]: x["effect"] for x in a.books}
    eb = {x["book"]: x["effect"] for x in b.books}
    common = sorted(set(ea) & set(eb))
    actual = stats.spearmanr([ea[k] for k in common], [eb[k] for k in common]).statistic
    predicted = [f.reliability["candidates"]["books"]["rerun_agreement"] for f in (a, b)]
    placebo = [f.reliability["candidates"]["books"]["placebo"] for f in (a, b)]
    print(f"\nworld {seed}: actual agreement {actual:.2f}; predicted {predicted}; placebo {placebo}; "
          f"placebo validity {[f.reliability['placebo_validity'] for f in (a, b)]}")  # fmt: skip
    assert actual > 0.6
    assert abs(np.mean(predicted) - actual) <= 0.2
    assert all(p is not None and p < 0.25 for p in placebo)
    assert all(f.reliability["placebo_validity"] < 0.25 for f in (a, b))
