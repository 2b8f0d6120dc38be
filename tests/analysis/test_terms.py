"""Signal-to-noise per metric and per objective term (recipe spread ÷ seed spread): in findings, the summary and
`bookmix analyze`, with the objective's weights read from the campaign's suite."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from bookmix.analysis import AnalysisConfig, analyze
from bookmix.analysis.noise import noise_report
from bookmix.analysis.table import from_records
from bookmix.analysis.terms import metric_snr, terms_sentence
from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.campaign.store import Store
from bookmix.cli import main
from bookmix.recipes.recipe import Recipe

# Names a real suite produces (a heldout_loss task called "held"), so the campaign's pipeline.yaml can name them.
CLEAR, SEEDY = "held/bpb", "held/loss"
WEIGHTS = {CLEAR: 1.0, SEEDY: 2.0}


def _records(n_recipes: int = 30, seeds: int = 3, seed: int = 0) -> list[dict]:
    """CLEAR: recipes spread by 0.1, seeds by 0.02 (ratio 5); SEEDY: recipes by 0.01, seeds by 0.05 (0.2);
    ``flat``: seed noise only. The objective is the suite's weighted sum."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n_recipes):
        recipe = Recipe.from_dict({"books": [f"{r:016x}", f"{r + 1000:016x}"], "seed": r}).to_dict()
        mu_clear, mu_seedy = rng.normal(0, 0.1), rng.normal(0, 0.01)
        for s in range(seeds):
            m = {CLEAR: mu_clear + rng.normal(0, 0.02), SEEDY: mu_seedy + rng.normal(0, 0.05),
                 "flat": rng.normal(0, 0.05), "stuck": 0.0, f"{CLEAR}@lang=en": mu_clear}  # fmt: skip
            out.append({"trial_id": f"t{r}-{s}", "recipe": recipe, "seed": s, "stage": "search",
                        "objective": sum(w * m[k] for k, w in WEIGHTS.items()), "objective_stderr": 0.01,
                        "metrics": m})  # fmt: skip
    return out


def _noise(**kw) -> dict:
    return noise_report(from_records(_records(**kw)))


def test_recipe_and_seed_spread_per_term_recover_the_planted_ratios():
    rows = metric_snr(_noise(), WEIGHTS)
    assert [r["metric"] for r in rows] == ["objective", CLEAR, SEEDY, "flat", "stuck"]  # breakdowns left out
    by = {r["metric"]: r for r in rows}
    assert by[CLEAR]["seed_spread"] == pytest.approx(0.02, rel=0.25)
    assert by[CLEAR]["recipe_spread"] == pytest.approx(0.1, rel=0.35)
    assert by[CLEAR]["ratio"] > 2.5 and by[CLEAR]["reliable"] is True
    assert by[SEEDY]["ratio"] < 1 and by[SEEDY]["reliable"] is False
    assert by["flat"]["weight"] is None and by["flat"]["weighted_spread"] is None
    assert by["stuck"]["ratio"] is None and by["stuck"]["reliable"] is None  # 0 / 0 is no ratio, not infinity
    assert by[SEEDY]["weighted_spread"] == pytest.approx(2.0 * by[SEEDY]["recipe_spread"])
    line = terms_sentence(rows)
    assert CLEAR in line and f"Not above seed noise: {SEEDY}" in line
    assert f"{CLEAR}@lang=en" in {r["metric"] for r in metric_snr(_noise(), WEIGHTS, breakdowns=True)}


def test_without_replicates_the_ratio_is_unknown_not_invented():
    rows = metric_snr(_noise(seeds=1), WEIGHTS)
    assert all(r["ratio"] is None and r["seed_spread"] is None and r["reliable"] is None for r in rows)
    assert terms_sentence(rows) is None


def test_findings_carry_terms_and_the_summary_names_the_noisy_term():
    f = analyze(_records(), None, AnalysisConfig(n_boot=0, propose=False, splits=0, objective_weights=WEIGHTS))
    d = f.to_dict()
    assert [r["metric"] for r in d["terms"]][:3] == ["objective", CLEAR, SEEDY]
    assert any(f"Not above seed noise: {SEEDY}" in s for s in d["summary"])
    plain = analyze(_records(), None, AnalysisConfig(n_boot=0, propose=False, splits=0)).to_dict()
    assert all(r["weight"] is None for r in plain["terms"])  # every metric's ratio, no term marked
    assert not any("Objective terms" in s for s in plain["summary"])


def test_analyze_reads_the_weights_from_the_campaigns_suite(tmp_path, capsys):
    folder = tmp_path / "camp"
    records = _records()
    suite = {
        "tasks": [{"name": "held", "type": "heldout_loss"}],
        "objective": {"weights": WEIGHTS, "direction": "maximize"},
    }
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(yaml.safe_dump({"eval": {"suite": suite}}), encoding="utf-8")
    with Store(folder / "campaign.sqlite") as store:
        store.add_recipes({r["recipe"]["id"]: r["recipe"] for r in records}.values(), round=0)
        store.add_trials(
            TrialSpec(trial_id=r["trial_id"], recipe=r["recipe"], seed=r["seed"], stage="search", round=0, model={},
                      train={}, library=str(tmp_path / "gone"), suite="", out_dir="")
            for r in records
        )  # fmt: skip
        for r in records:
            store.record(TrialResult(trial_id=r["trial_id"], state="completed", objective=r["objective"],
                                     objective_stderr=0.01,
                                     metrics={k: {"value": v, "stderr": None} for k, v in r["metrics"].items()}))  # fmt: skip
    assert main(["analyze", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {r["metric"]: r["weight"] for r in data["terms"]}[SEEDY] == 2.0
    assert main(["analyze", str(folder)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "recipe spread" in err and "seed spread" in err and f"Not above seed noise: {SEEDY}" in err
