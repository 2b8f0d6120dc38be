"""Would an independent rerun agree? Split-half agreement, its projection, the placebo, kinds of book, the planner.

Campaigns here are synthetic with an additive planted truth (objective = sum of the recipe's book effects + seed
noise), so the agreement two independent campaigns reach can be measured directly and compared with what each
predicted from its own halves.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from bookmix.analysis import AnalysisConfig, analyze, from_records
from bookmix.analysis.datamodel import fit_book_model
from bookmix.analysis.features import book_info
from bookmix.analysis.reliability import (
    choose_level,
    group_effects,
    pilot_sentence,
    plan_from_pilot,
    reliability,
    spearman_brown,
    trials_for,
)
from bookmix.cli import main
from bookmix.recipes.recipe import Recipe

P, K = 40, 8
IDS = [f"{i:016x}" for i in range(P)]


def campaign(effects: np.ndarray, n: int, seed: int, noise: float = 0.15, replicated: float = 0.25) -> list[dict]:
    """n random recipes of K books; a quarter of them trained with a second seed."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n):
        books = rng.choice(P, K, replace=False)
        recipe = Recipe.from_dict({"books": [IDS[i] for i in books], "seed": 10_000 * seed + r}).to_dict()
        for s in range(2 if r < replicated * n else 1):
            y = float(effects[books].sum() + rng.normal(0, noise))
            out.append({"trial_id": f"{r}-{s}", "recipe": recipe, "seed": s, "objective": y, "metrics": {}})
    return out


def effects_of(records: list[dict]) -> dict[str, float]:
    """The book effects the analysis reports (the datamodel ridge), without the rest of the analysis."""
    t = from_records(records)
    model = fit_book_model(t.inclusion, np.zeros((t.n, 0)), t.objective, t.groups, n_boot=0)
    return dict(zip(t.book_ids, model.effect, strict=True))


def agreement(a: list[dict], b: list[dict]) -> float:
    ea, eb = effects_of(a), effects_of(b)
    common = sorted(set(ea) & set(eb))
    return float(stats.spearmanr([ea[k] for k in common], [eb[k] for k in common]).statistic)


def predicted(records: list[dict], seed: int = 0) -> float:
    return reliability(from_records(records), from_records(records).inclusion, "books", seed=seed).rerun_agreement


TRUTH = np.random.default_rng(7).normal(0, 0.1, P)


def test_split_half_predicts_the_agreement_of_an_independent_campaign():
    """Over four pairs of 60-trial campaigns (one pair's agreement is itself noisy, ±0.1), the agreement predicted
    from each campaign's own halves matches the agreement the pairs show."""
    actual, pred = [], []
    for s in (1, 2, 3, 4):
        a, b = campaign(TRUTH, 60, seed=s), campaign(TRUTH, 60, seed=100 + s)
        actual.append(agreement(a, b))
        pred += [predicted(a, s), predicted(b, 100 + s)]
    assert 0.3 < np.mean(actual) < 0.9  # a campaign in the interesting range, neither hopeless nor saturated
    assert abs(np.mean(pred) - np.mean(actual)) <= 0.12, (pred, actual)


def test_projection_to_a_bigger_campaign():
    """From 80-trial pilots, Spearman–Brown projects what 240-trial campaigns reach; measured, it holds, on the
    conservative side (half a pilot has fewer trials than books, where the ridge loses more than half its
    information, so halves understate the whole: 0.82 projected vs 0.91 measured when this was written)."""
    small = [predicted(campaign(TRUTH, 80, seed=s), s) for s in (11, 12, 13, 14)]
    projected = spearman_brown(float(np.mean(small)), 3.0)
    big = np.mean([agreement(campaign(TRUTH, 240, seed=s), campaign(TRUTH, 240, seed=100 + s)) for s in (15, 16)])
    assert -0.12 <= big - projected <= 0.15, (small, projected, big)
    need = trials_for(float(np.mean(small)), 80)["0.8"]
    assert need is not None and 80 < need < 240 * 2


def test_placebo_collapses_and_real_signal_does_not():
    t = from_records(campaign(TRUTH, 80, seed=3))
    r = reliability(t, t.inclusion, "books", seed=0)
    assert r.split_half > 0.4
    assert r.placebo is not None and abs(r.placebo) < 0.2
    f = analyze(campaign(TRUTH, 80, seed=3), None, AnalysisConfig(n_boot=0, propose=False, splits=10))
    assert f.reliability["placebo_validity"] < 0.2 < f.validity["datamodel"]["spearman"]


def test_kinds_of_book_are_chosen_when_single_books_are_too_rare():
    """800 books in 20 kinds, where only the kind matters: 60 trials read each book ~0.6 times, far too rarely for book
    effects, but each kind ~24 times: the analysis must choose the kind level and rank the kinds right."""
    n_books, kinds = 800, 20
    ids = [f"b{i:04d}" for i in range(n_books)]
    kind = np.arange(n_books) % kinds
    kind_effect = np.random.default_rng(5).normal(0, 0.05, kinds)
    rng = np.random.default_rng(6)
    records = []
    for r in range(60):
        books = rng.choice(n_books, K, replace=False)
        recipe = Recipe.from_dict({"books": [ids[i] for i in books], "seed": r}).to_dict()
        for s in range(2 if r < 15 else 1):
            y = float(kind_effect[kind[books]].sum() + rng.normal(0, 0.02))
            records.append({"trial_id": f"{r}-{s}", "recipe": recipe, "seed": s, "objective": y, "metrics": {}})
    catalog = {"id": np.array(ids, dtype=object), "cluster": kind.astype(np.int64)}
    t = from_records(records)
    choice = choose_level(t, book_info(catalog, t.book_ids), splits=10)
    assert choice.level == "cluster", choice.to_dict()
    assert choice.candidates["cluster"].rerun_agreement > choice.candidates["books"].rerun_agreement
    rows = group_effects(t, choice, n_boot=50)
    got = {int(r["group"]): r["effect"] for r in rows}
    rho = stats.spearmanr([got[g] for g in sorted(got)], [kind_effect[g] for g in sorted(got)]).statistic
    assert rho > 0.8 and sum(r["books"] for r in rows) == len(t.book_ids)  # every book read is in one kind
    # and the whole analysis reports it
    f = analyze(records, catalog, AnalysisConfig(n_boot=20, propose=False, splits=10))
    assert f.reliability["level"] == "cluster" and len(f.groups) == kinds
    assert any("grouped by cluster" in line for line in f.summary)


def test_plan_from_pilot_scales_with_trials_per_book():
    findings = {"n_trials": 100, "n_books": 40, "set_size": 8, "reliability": {"level": "books", "candidates": {
        "books": {"rerun_agreement": 0.5}}}}  # fmt: skip
    same = plan_from_pilot(findings, 100)["levels"]["books"]
    assert same["agreement"] == pytest.approx(0.5) and same["scale"] == 1
    four = plan_from_pilot(findings, 400)["levels"]["books"]
    assert four["agreement"] == pytest.approx(0.8)  # 4 x 0.5 / (1 + 3 x 0.5)
    # 4x the trials over a 4x larger library: each book is read as often as in the pilot
    assert plan_from_pilot(findings, 400, library_books=160)["levels"]["books"]["agreement"] == pytest.approx(0.5)
    # Another set size: no rule carried agreement across set sizes on real books, so none is applied, and the plan
    # says to pilot at the planned size
    small = plan_from_pilot(findings, 100, per_set=2)
    assert small["levels"]["books"]["scale"] == 1 and "set size" in small["set_size_note"]
    assert "Caution" in pilot_sentence(small) and "Caution" not in pilot_sentence(plan_from_pilot(findings, 100, 8))
    with pytest.raises(ValueError, match="no reliability"):
        plan_from_pilot({"n_trials": 10}, 100)


def test_estimate_with_a_pilot_prints_the_projection(tmp_path, capsys):
    records = campaign(TRUTH, 40, seed=21)
    f = analyze(records, None, AnalysisConfig(n_boot=0, propose=False, splits=10))
    (tmp_path / "findings.json").write_text(f.to_json())
    args = ["estimate", "--model", "nano", "--books", "8", "--tokens-per-book", "10000", "--gpu", "cpu", "--trials",
            "400", "--pilot", str(tmp_path)]  # fmt: skip
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    r0 = f.reliability["candidates"]["books"]["rerun_agreement"]
    assert data["power"]["levels"]["books"]["agreement"] == pytest.approx(spearman_brown(r0, 400 / f.n_trials))
    assert main(args) == 0
    shown = " ".join(capsys.readouterr().err.split())  # the human view goes to the console (stderr), wrapped
    assert "a campaign of 400 trials would agree with an independent rerun at about ρ = " in shown
    assert main(["estimate", "--model", "nano", "--books", "8", "--gpu", "cpu", "--tokens-per-book", "10",
                 "--pilot", str(tmp_path)]) != 0  # fmt: skip
    assert "--pilot: give --trials" in capsys.readouterr().err
