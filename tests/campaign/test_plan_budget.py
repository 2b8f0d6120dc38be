"""The campaign forecast before training: `bookmix run --plan`, `campaign.time_budget` (refused unless --force), the
forecast against the measured stage times at the end, and the progress bar's forecast ETA."""

from __future__ import annotations

import json
import math

import pytest

from bookmix.config import load_pipeline, parse_pipeline
from bookmix.errors import ConfigError

from .conftest import bookmix_cli, db_rows, pipeline_dict, write_pipeline


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A calibration home with a known CPU throughput, so forecasts are exact functions of the pipeline."""
    from bookmix.forecast import save_calibration

    monkeypatch.setenv("BOOKMIX_HOME", str(tmp_path / "home"))
    save_calibration({"device": "cpu", "preset": "nano", "tokens_per_s": 50_000.0, "seq_len": 64, "micro_batch": 8})
    return tmp_path / "home"


@pytest.mark.parametrize(("value", "seconds"), [("8h", 28_800.0), ("45m", 2_700.0), (90, 90.0), ("1.5d", 129_600.0)])
def test_time_budget_parses_durations(tmp_path, value, seconds):
    data = pipeline_dict(
        tmp_path / "c", tmp_path, campaign={"name": "t", "out": str(tmp_path / "c"), "time_budget": value}
    )
    assert parse_pipeline(data).campaign.time_budget == seconds


@pytest.mark.parametrize("value", ["0h", "eight hours", -5, True])
def test_time_budget_rejects_nonsense_with_the_field_path(tmp_path, value):
    data = pipeline_dict(
        tmp_path / "c", tmp_path, campaign={"name": "t", "out": str(tmp_path / "c"), "time_budget": value}
    )
    with pytest.raises(ConfigError, match=r"campaign\.time_budget: "):
        parse_pipeline(data)


def test_forecast_counts_every_planned_trial_from_its_tokens(tmp_path, world_library, home):
    from bookmix.campaign.designs import initial_recipes
    from bookmix.campaign.forecast import forecast_campaign
    from bookmix.campaign.plan import plan_search
    from bookmix.forecast import defaults
    from bookmix.library import Library

    data = pipeline_dict(
        tmp_path / "c", world_library, executor={"kind": "local", "workers": 1, "threads": 1, "trials_per_unit": 2}
    )
    cfg = parse_pipeline(data, source=write_pipeline(tmp_path / "p.yaml", data))
    lib = Library.open(world_library)
    model = cfg.trial_model(lib.vocab_size)
    recipes = initial_recipes(cfg.search.designs, lib)
    plan = forecast_campaign(cfg, lib, model, recipes, device="cpu")
    specs = plan_search(cfg, recipes, model, 0, world_library)
    search = plan.stage("search")
    assert search.trials == len(specs) == 5  # 4 recipes × 1 seed + 1 replicate
    assert plan.calibrated and plan.tokens_per_s > 0
    assert [s.stage for s in plan.stages] == ["search"]  # analysis, dialogue and report are off in this pipeline
    # two trials to a worker process: 3 start-ups, then each trial's tokens at the calibrated rate (max_tokens caps)
    tokens = 8 * 64 * 12
    assert search.seconds > 3 * defaults.STARTUP_CPU_S + len(specs) * tokens / 50_000
    assert not plan.over_budget and plan.warnings == []

    more = parse_pipeline({**data, "seeds": {"seeds": [0, 1], "replicates": 0.25, "replicate_seeds": 1}})
    assert forecast_campaign(more, lib, model, recipes, device="cpu").stage("search").trials == 9

    tight = parse_pipeline({**data, "campaign": {**data["campaign"], "time_budget": "1s"}})
    plan = forecast_campaign(tight, lib, model, recipes, device="cpu")
    assert plan.over_budget and len(plan.warnings) == 1 and "campaign.time_budget is 1 s" in plan.warnings[0]


@pytest.mark.slow
def test_plan_then_budget_refusal_then_force(tmp_path, world_library, home):
    data = pipeline_dict(tmp_path / "c", world_library)
    data["campaign"]["time_budget"] = "2s"
    path = write_pipeline(tmp_path / "pipeline.yaml", data)

    proc = bookmix_cli("run", str(path), "--plan", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["planned_only"] and out["plan"]["over_budget"] and out["plan"]["budget_seconds"] == 2.0
    assert out["plan"]["stages"][0]["trials"] == 5 and out["forecast_vs_actual"] == []
    assert db_rows(tmp_path / "c", "SELECT count(*) FROM trials") == [(0,)]  # designed, nothing trained
    assert len(db_rows(tmp_path / "c", "SELECT id FROM recipes")) == 4

    proc = bookmix_cli("run", str(path))
    assert proc.returncode == 2
    err = " ".join(proc.stderr.split())
    assert "campaign.time_budget" in err and "--force" in err and "nothing was trained" in err
    assert db_rows(tmp_path / "c", "SELECT count(*) FROM trials") == [(0,)]

    proc = bookmix_cli("run", str(path), "--force", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["trials"]["completed"] == 5
    rows = {r["stage"]: r for r in out["forecast_vs_actual"]}
    assert set(rows) == {"search", "total"}
    assert rows["search"]["actual_s"] > 0 and math.isclose(
        rows["search"]["ratio"], rows["search"]["forecast_s"] / rows["search"]["actual_s"], rel_tol=0.01
    )
    saved = json.loads((tmp_path / "c" / "forecast.json").read_text())
    assert saved["plan"]["stages"][0]["stage"] == "search" and saved["stage_seconds"]["search"] > 0

    # resumed after it finished: nothing is left to forecast but the stages that always run
    cfg = load_pipeline(path)
    from bookmix.campaign.runner import run_campaign

    again = run_campaign(cfg, show_progress=False, plan_only=True)
    assert again.plan.stage("search").trials == 0 and not again.plan.over_budget


def test_progress_shows_the_forecast_eta_and_closes_with_forecast_vs_actual(tmp_path, world_library):
    from bookmix.campaign.progress import CampaignProgress

    data = pipeline_dict(tmp_path / "c", world_library)
    cfg = parse_pipeline(data)
    bar = CampaignProgress(cfg, {"block_size": 64}, None, enabled=False, forecast_total=120.0)
    assert 119.0 <= bar.forecast_eta_seconds() <= 120.0
    bar.started -= 200  # overrun: the forecast ETA stops at zero, it never goes negative
    assert bar.forecast_eta_seconds() == 0.0
    line = bar.finish()
    assert line.startswith("forecast 2.0 min, took 3.3 min") and "forecast ÷ actual 0.60" in line
    assert CampaignProgress(cfg, {"block_size": 64}, None, enabled=False).finish() is None


def test_plan_projects_a_pilots_agreement_and_warns_below_the_noise_floor(tmp_path, world_library, home):
    """analysis.pilot: the agreement a pilot's split halves measured, projected onto this campaign before training;
    a low one is a warning, like the time budget; a pilot without findings fails with the field's name."""
    from bookmix.campaign.designs import initial_recipes
    from bookmix.campaign.forecast import forecast_campaign
    from bookmix.errors import BookmixError
    from bookmix.library import Library

    def pilot(folder, agreement):
        folder.mkdir()
        findings = {"n_trials": 50, "n_books": 10, "set_size": 3, "reliability": {"level": "books", "candidates": {
            "books": {"rerun_agreement": agreement}}}}  # fmt: skip
        (folder / "findings.json").write_text(json.dumps(findings))
        return str(folder)

    lib = Library.open(world_library)
    data = pipeline_dict(tmp_path / "c", world_library, analysis={"enabled": True, "pilot": pilot(tmp_path / "p1", 0.9)})
    cfg = parse_pipeline(data)
    model = cfg.trial_model(lib.vocab_size)
    recipes = initial_recipes(cfg.search.designs, lib)
    plan = forecast_campaign(cfg, lib, model, recipes, device="cpu")
    books = plan.power["levels"]["books"]
    assert plan.power["trials"] == 5 and books["pilot_agreement"] == 0.9 and books["agreement"] < 0.9  # 5 vs 50 trials
    assert plan.to_dict()["power"] == plan.power
    low = [w for w in plan.warnings if w.startswith("below the noise floor")]
    assert (books["agreement"] < 0.5) == bool(low)

    weak = parse_pipeline({**data, "analysis": {"enabled": True, "pilot": pilot(tmp_path / "p2", 0.1)}})
    plan = forecast_campaign(weak, lib, model, recipes, device="cpu")
    assert any(w.startswith("below the noise floor: From the pilot (50 trials") for w in plan.warnings)

    gone = parse_pipeline({**data, "analysis": {"enabled": True, "pilot": str(tmp_path / "nowhere")}})
    with pytest.raises(BookmixError, match="analysis.pilot: .*nowhere.*no findings.json"):
        forecast_campaign(gone, lib, model, recipes, device="cpu")
