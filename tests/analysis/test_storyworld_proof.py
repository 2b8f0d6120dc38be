"""Proof that the analysis finds real, planted patterns: a storyworld campaign of 64 trials.

The world plants which books teach the facts that the fact_recall items ask (fact books, per the manifest) and which
books contradict them (misleading books). Each trial trains a model on a real Recipe's books and scores the real
items. The model here is the storyworld's word 5-gram scorer (its model-agnostic learnability check), not a nano LM:
a trial takes 0.1 s instead of a minute on two CPU cores, and the analysis sees the same kind of record either way.
Seed noise: each seed scores a different random 70% of the items, as a replicate's evaluation would differ.
"""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.analysis import AnalysisConfig, Constraints, analyze, propose, verify_stats
from bookmix.recipes.recipe import Recipe
from bookmix.storyworld import generate
from bookmix.storyworld.learnability import accuracy
from bookmix.storyworld.ngram import NGramScorer

TASK = "fact_recall"
SET_SIZE = 12
EXPLORE, REPLICATED = 48, 16  # 48 recipes, 16 of them with a second seed: 64 trials


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("sw") / "world", books=40, seed=0, tokens_per_book=4000)


def _trial(world, texts, items, recipe: Recipe, seed: int) -> float:
    rng = np.random.default_rng(seed)
    scorer = NGramScorer([texts[b] for b in recipe.books])
    score, _ = accuracy(scorer, items)
    keep = rng.random(len(items)) < 0.7
    return float(score[keep].mean())


@pytest.mark.slow
def test_storyworld_campaign_ranks_planted_books_and_proposal_beats_baselines(world):
    train = world.book_names(holdout=False)
    texts = {n: world.book_path(n).read_text(encoding="utf-8") for n in train}
    items = world.items(TASK)
    helpful = {b for it in items for b in it.helps}
    misleading = set(world.book_names(kind="misleading", holdout=False))
    rng = np.random.default_rng(0)

    records = []
    for r in range(EXPLORE):
        recipe = Recipe.from_dict({"books": list(rng.choice(train, SET_SIZE, replace=False)), "seed": r})
        for s in range(2 if r < REPLICATED else 1):
            records.append({
                "trial_id": f"{r}-{s}", "recipe": recipe.to_dict(), "seed": s,
                "stage": "search" if s == 0 else "replicate",
                "objective": _trial(world, texts, items, recipe, seed=1000 * r + s), "objective_stderr": None,
                "metrics": {},
            })  # fmt: skip
    assert len(records) == 64
    catalog = {
        "id": np.array(train, dtype=object),
        "title": np.array([world.book(n).title for n in train], dtype=object),
        "year": np.array([world.book(n).year for n in train], dtype=float),
        "difficulty": np.array([world.book(n).difficulty for n in train], dtype=float),
        "genre": np.array([world.book(n).genre for n in train], dtype=object),
    }
    findings = analyze(records, catalog, AnalysisConfig(seed=0))

    # Helpful (fact) books above the rest: ROC AUC of the effect as a helpful-vs-other classifier.
    effect = {b["book"]: b["effect"] for b in findings.books}
    pos = np.array([effect[b] for b in effect if b in helpful])
    neg = np.array([effect[b] for b in effect if b not in helpful])
    auc = float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))
    ranked = [b["book"] for b in findings.books]
    bottom = ranked[-len(ranked) // 4 :]
    mis_pct = np.mean([ranked.index(b) / (len(ranked) - 1) for b in misleading if b in effect])
    print(f"\nstoryworld proof: AUC helpful-vs-other {auc:.3f}; misleading mean rank percentile {mis_pct:.2f} "
          f"(0 = top, 1 = bottom); misleading in bottom quarter: {len(misleading & set(bottom))}/{len(misleading)}; "
          f"datamodel validity {findings.validity['datamodel']}")  # fmt: skip
    assert auc >= 0.85
    assert mis_pct >= 0.75  # the misleading books sit at the bottom of the ranking
    assert findings.validity["datamodel"]["spearman"] > 0.5

    # Verification: the proposal against 5 random recipes of the same size, 3 seeds each.
    prop = propose(findings, constraints=Constraints(set_size=SET_SIZE)).recipe
    prop_obj = [_trial(world, texts, items, prop, seed=90_000 + s) for s in range(3)]
    base_obj = []
    for i in range(5):
        base = Recipe.from_dict({"books": list(rng.choice(train, SET_SIZE, replace=False)), "seed": 500 + i})
        base_obj += [_trial(world, texts, items, base, seed=91_000 + 10 * i + s) for s in range(3)]
    stats = verify_stats(prop_obj, base_obj, seed=0)
    print(f"verification: proposal {np.mean(prop_obj):.3f} vs baselines {np.mean(base_obj):.3f}: {stats}")
    assert stats["improvement"] > 0 and stats["ci"][0] > 0 and stats["p_value"] < 0.05
