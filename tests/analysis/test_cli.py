"""`bookmix analyze CAMPAIGN [--json]` over a real campaign results store (SQLite) filled with planted trials."""

from __future__ import annotations

import json

import yaml

from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.campaign.store import Store
from bookmix.cli import main


def _campaign(tmp_path, planted, loss: bool = False) -> tuple:
    """A results store of planted trials; ``loss``: objectives stored as a minimised loss (the planted value negated)
    with the direction left to the suite file the pipeline names, as a campaign from before it was recorded."""
    camp = planted(n_books=20, n_recipes=40, per_set=6, seed=4)
    folder = tmp_path / "camp"
    with Store(folder / "campaign.sqlite") as store:
        if not loss:
            store.record_objective({"objective": 1.0}, "maximize")  # as the driver does when a campaign starts
        recipes = {r["recipe"]["id"]: r["recipe"] for r in camp.records}
        store.add_recipes(recipes.values(), round=0)
        store.add_trials(
            TrialSpec(trial_id=r["trial_id"], recipe=r["recipe"], seed=r["seed"], stage="search", round=0, model={},
                      train={}, library=str(tmp_path / "gone"), suite="", out_dir="")
            for r in camp.records
        )  # fmt: skip
        for r in camp.records:
            metrics = {k: {"value": v, "stderr": None} for k, v in r["metrics"].items()}
            store.record(TrialResult(trial_id=r["trial_id"], state="completed",
                                     objective=-r["objective"] if loss else r["objective"],
                                     objective_stderr=0.01, metrics=metrics))  # fmt: skip
    if loss:
        suite = {"name": "s", "tasks": [{"name": "heldout", "type": "heldout_loss"}],
                 "objective": {"metric": "heldout/loss", "direction": "minimize"}}  # fmt: skip
        (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
        pipeline = {"campaign": {"name": "camp"}, "eval": {"suite": str(tmp_path / "suite.yaml")}}
        (folder / "pipeline.yaml").write_text(yaml.safe_dump(pipeline), encoding="utf-8")
    return folder, camp


def test_moving_the_suite_does_not_change_the_ranking(tmp_path, planted, capsys):
    """The direction is read from the suite once and kept in the store: a minimised loss stays minimised after the
    suite file is gone (it used to fall back to "higher is better" and rank the worst book first)."""
    folder, camp = _campaign(tmp_path, planted, loss=True)
    assert main(["analyze", str(folder), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)["top_books"][0]["book"]
    assert camp.effects[before] > sorted(camp.effects.values())[len(camp.effects) // 2]  # the loss read as a loss
    (tmp_path / "suite.yaml").unlink()
    assert main(["analyze", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top_books"][0]["book"] == before
    assert main(["status", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["objective"]["direction"] == "minimize"


def test_analyze_json_prints_one_object(tmp_path, planted, capsys):
    folder, camp = _campaign(tmp_path, planted)
    assert main(["analyze", str(folder), "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert data["n_trials"] == 80 and data["n_recipes"] == 40
    truth = camp.effects
    top = data["top_books"][0]["book"]
    assert truth[top] > sorted(truth.values())[len(truth) // 2]  # the top book is truly above the median
    assert data["proposal"]["recipe"]["id"]
    assert data["validity"]["datamodel"]["spearman"] > 0.5


def test_analyze_rich_output_on_stderr(tmp_path, planted, capsys):
    folder, _ = _campaign(tmp_path, planted)
    assert main(["analyze", str(folder), "--top", "3"]) == 0
    cap = capsys.readouterr()
    assert cap.out == ""
    assert "Top books" in cap.err and "Factors" in cap.err and "Spearman" in cap.err and "Proposal" in cap.err


def test_analyze_not_a_campaign_is_one_line_error(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "not a campaign folder" in err and "nope" in err
