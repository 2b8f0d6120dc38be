"""The transfer stage end to end on a tiny campaign (real trials, real SQLite), and its config/CLI errors."""

from __future__ import annotations

import json

import pytest

from bookmix.campaign.runner import run_campaign, run_transfer
from bookmix.campaign.transfer import choose_recipes
from bookmix.config import parse_pipeline
from bookmix.errors import BookmixError, ConfigError

from .conftest import bookmix_cli, db_rows, pipeline_dict, read_json, write_pipeline

TARGET = {"preset": "nano", "overrides": {"n_layer": 2, "n_head": 2, "d_model": 64, "block_size": 64}}


def _cfg(tmp_path, library, **transfer):
    data = pipeline_dict(
        tmp_path / "c",
        library,
        search={"designs": [{"design": "random", "n": 6, "books_per_set": 3, "seed": 0}]},
        analysis={"enabled": True, "options": {"n_boot": 20, "splits": 0}},
        executor={"pack": 8},
        transfer={"enabled": True, "recipes": 5, "seeds": [0, 1], "target": TARGET, **transfer},
    )
    return parse_pipeline(data)


def test_transfer_stage_runs_in_the_campaign_and_stays_out_of_the_top_list(tmp_path, world_library):
    cfg = _cfg(tmp_path, world_library, proxies=[{"name": "lr high", "train": {"lr": 0.05}}])
    summary = run_campaign(cfg, show_progress=False)
    assert summary.transfer is not None and summary.transfer.name == "transfer.json"
    data = read_json(summary.transfer)
    assert len(data["recipes"]) == 5
    assert set(data["proxies"]) == {"campaign", "lr high"}
    for p in data["proxies"].values():
        assert p["verdict"] in ("transfers", "does not transfer")
        assert len(p["points"]) == 5 and all(pt["target_seeds"] == 2 for pt in p["points"])
    assert data["best"]["best"] in data["proxies"]
    # target trials: 5 recipes x 2 seeds, stage transfer; the campaign's own proxy reuses its seed-0 search trials
    stages = dict(db_rows(summary.campaign_dir, "SELECT stage, COUNT(*) FROM trials GROUP BY stage"))
    # at the campaign's own setting a (recipe, seed) the search already trained (seed 0, or a replicate's seed 1) is
    # reused; the others, and both seeds of a proposal the search never trained, are new transfer trials
    had = set(
        db_rows(summary.campaign_dir, "SELECT recipe_id, seed FROM trials WHERE stage IN ('search', 'replicate')")
    )
    own_new = sum((r, s) not in had for r in data["recipes"] for s in (0, 1))
    assert own_new < 10  # some were reused
    assert stages["transfer"] == 5 * 2 * 2 + own_new  # target and lr-high at both seeds, plus the campaign's new ones
    # the top list (retention's keep set, later rounds, the dialogue) never holds a transfer trial
    from bookmix.campaign.store import Store

    with Store(summary.campaign_dir / "campaign.sqlite") as store:
        assert all(t["stage"] != "transfer" for t in store.ranked())
        kept = [t for t in store.trials() if t["weights_kept"]]
        assert all(t["stage"] != "transfer" for t in kept)
    findings = read_json(summary.findings)
    assert any(s.startswith("Transfer: Proxy campaign") for s in findings["summary"])
    assert findings["transfer"]["verdict"] == data["proxies"]["campaign"]["verdict"]
    # the forecast had a transfer stage with every arm's trials
    fc = summary.plan.stage("transfer")
    assert fc is not None and fc.trials == 5 * 2 * 3 and fc.seconds > 0
    # running the command again on the finished campaign trains nothing new and writes the same comparison
    n_before = db_rows(summary.campaign_dir, "SELECT COUNT(*) FROM trials")[0][0]
    r = bookmix_cli("transfer", str(summary.campaign_dir), "--json")
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert db_rows(summary.campaign_dir, "SELECT COUNT(*) FROM trials")[0][0] == n_before
    assert again["proxies"]["campaign"]["spearman"] == data["proxies"]["campaign"]["spearman"]


def test_choose_recipes_takes_top_bottom_random_and_the_proposal():
    ranked = [f"r{i}" for i in range(20)]
    got = choose_recipes(ranked, 9, "p", seed=0)
    roles = dict(got)
    assert len(got) == 9 and roles["p"] == "proposal"
    assert [r for r, role in got if role == "top"] == ["r0", "r1"]
    assert [r for r, role in got if role == "bottom"] == ["r18", "r19"]
    assert len([r for r, role in got if role == "random"]) == 4
    assert all(2 <= int(r[1:]) <= 17 for r, role in got if role == "random")
    assert len(choose_recipes(ranked[:5], 9, None)) == 5  # fewer than asked: all of them


@pytest.mark.parametrize(
    ("transfer", "message"),
    [
        ({"recipes": 2}, "transfer.recipes"),
        ({"seeds": [0, 0]}, "transfer.seeds"),
        ({"target": {"train": {"learning_rate": 1}}}, "transfer.target.train.learning_rate"),
        ({"bogus": 1}, "transfer.bogus: unknown field"),
    ],
)
def test_bad_transfer_config_names_the_field(tmp_path, world_library, transfer, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _cfg(tmp_path, world_library, **transfer)


def _err(r) -> str:  # noqa: ANN001 - CompletedProcess
    return " ".join(r.stderr.split())  # the console wraps long lines


def test_transfer_cli_errors(tmp_path, world_library):
    r = bookmix_cli("transfer", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "not a campaign folder" in _err(r)
    with pytest.raises(BookmixError, match="not a campaign folder"):
        run_transfer(tmp_path)
    # a campaign with no completed trial: the stage says so before training anything
    cfg = _cfg(tmp_path, world_library)
    cfg.campaign_dir.mkdir(parents=True)
    write_pipeline(cfg.campaign_dir / "pipeline.yaml", cfg.resolved())
    cfg.write_inline_suite()
    from bookmix.campaign.store import Store

    Store(cfg.campaign_dir / "campaign.sqlite").close()
    r = bookmix_cli("transfer", str(cfg.campaign_dir), "--recipes", "1")
    assert r.returncode == 2 and "transfer.recipes" in _err(r)
    r = bookmix_cli("transfer", str(cfg.campaign_dir), "--target", "gigantic")
    assert r.returncode == 2 and "transfer.target" in _err(r) and "gigantic" in _err(r)
    r = bookmix_cli("transfer", str(cfg.campaign_dir))
    assert r.returncode == 2 and "no completed search trial" in _err(r)
