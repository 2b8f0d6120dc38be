"""collect(): the payload read from a real results store, findings, verification, samples and the forecast."""

from __future__ import annotations

import json
import shutil

import pytest

from bookmix.campaign.store import Store
from bookmix.errors import BookmixError
from bookmix.report import collect
from bookmix.report.data import fingerprint
from bookmix.report.downsample import MAX_POINTS
from support.campaign import make_campaign

from .conftest import complete_one_pending


def test_payload_matches_the_store(campaign, small_library):
    p = collect(campaign)
    with Store(campaign / "campaign.sqlite", readonly=True) as store:
        counts = store.counts()
        trials = store.trials()
    assert p["overview"]["counts"] == counts and p["overview"]["total"] == len(trials) == len(p["trials"])
    assert counts["running"] == 2 and counts["pending"] == 3 and counts["failed"] == 1
    assert p["campaign"]["objective"] == {
        "label": "heldout/loss",
        "direction": "minimize",
        "maximize": False,
        "known": True,
    }

    # leaderboard: lower loss first, ranks 1..k over recipes with a finished trial
    board = [r for r in p["leaderboard"] if r["rank"] is not None]
    assert [r["rank"] for r in board] == list(range(1, len(board) + 1))
    means = [r["mean"] for r in board]
    assert means == sorted(means)
    done = [t for t in trials if t["state"] == "completed"]
    by_recipe: dict[str, list[float]] = {}
    for t in done:
        by_recipe.setdefault(t["recipe_id"], []).append(t["objective"])
    best_id = min(by_recipe, key=lambda r: sum(by_recipe[r]) / len(by_recipe[r]))
    assert board[0]["id"] == best_id and board[0]["n_completed"] == len(by_recipe[best_id])

    # remaining = pending + running, at the measured seconds per trial, over the pipeline's 2 workers
    rem = p["overview"]["remaining"]
    assert rem["trials"] == 5 and rem["workers"] == 2 and rem["source"].startswith("measured")
    per = sum(t["train_seconds"] + t["eval_seconds"] for t in done) / len(done)
    assert rem["eta_seconds"] == pytest.approx(5 * per / 2)
    assert p["overview"]["compute"]["tokens"] == sum(t["tokens"] or 0 for t in trials)

    # books travel as indices into book_ids (commonest first), titles from the campaign's library
    with Store(campaign / "campaign.sqlite", readonly=True) as store:
        recipes = {r["id"]: r for r in store.recipes()}
    for row in p["leaderboard"]:
        assert sorted(p["book_ids"][i] for i in row["books"]) == sorted(recipes[row["id"]]["books"])
    uses = [sum(i in row["books"] for row in p["leaderboard"]) for i in range(len(p["book_ids"]))]
    assert uses == sorted(uses, reverse=True)
    assert len(p["book_titles"]) == len(p["book_ids"]) and all(t.startswith("Tale of the") for t in p["book_titles"])


def test_curves_are_thinned_and_limited_to_losses(campaign):
    p = collect(campaign)
    with Store(campaign / "campaign.sqlite", readonly=True) as store:
        raw = store.curves(p["trials"][0]["id"])
    assert sum(1 for r in raw if r["name"] == "loss") > MAX_POINTS  # the fixture logs more than we keep
    for curves in p["curves"].values():
        assert set(curves) <= {"loss", "heldout_loss"}
        for c in curves.values():
            assert 2 <= len(c["x"]) <= MAX_POINTS and len(c["x"]) == len(c["y"]) and c["x_is"] == "tokens"
            assert c["x"] == sorted(c["x"])
    first = p["curves"][p["trials"][0]["id"]]["loss"]
    loss = [r for r in raw if r["name"] == "loss"]
    assert first["x"][0] == loss[0]["tokens"] and first["x"][-1] == loss[-1]["tokens"]
    assert collect(campaign, max_curve_points=10)["curves"][p["trials"][0]["id"]]["loss"]["x"].__len__() <= 10


def test_findings_verification_samples_and_forecast(campaign):
    p = collect(campaign)
    assert p["findings_source"] == "findings.json"
    assert p["findings"]["n_trials"] > 0 and p["findings"]["books"] and p["findings"]["factors"]
    assert p["proposal"]["recipe"]["id"] == p["verification"]["proposal"]
    vp = p["verify_points"]
    assert len(vp["proposal"]) == 3 and len(vp["baselines"]) == 6
    assert set(p["verification"]) >= {"improvement", "ci", "p_value", "n_proposal", "n_baseline"}

    objs = [s["objective"] for s in p["samples"]]
    assert 1 <= len(objs) <= 5 and objs == sorted(objs)  # the best (lowest loss) trials first
    assert len({s["recipe_id"] for s in p["samples"]}) == len(objs)  # one per recipe
    assert all(s["samples"][0]["prompt"] == "The old harbour" for s in p["samples"])
    completed = sorted(t["objective"] for t in p["trials"] if t["state"] == "completed")
    assert objs[0] == completed[0]

    f = p["forecast"]
    assert [r["device"] for r in f["rows"]][:3] == ["rtx-pro-6000", "h100-sxm", "rtx-4090"]
    assert f["trials_remaining"] == 5 and f["tokens_per_trial"] > 0
    for r in f["rows"][:3]:
        assert r["trial_seconds"] > 0 and r["campaign_seconds"] > r["remaining_seconds"] > 0
    json.dumps(p, allow_nan=False)  # plain JSON all through


def test_dialogue_samples_are_found(tmp_path):
    c = make_campaign(tmp_path / "c", recipes=12, findings=False, verify=False)
    p = collect(c, analyze=False)
    with_dialogue = [s for s in p["samples"] if s["dialogue"]]
    for s in with_dialogue:
        assert (c / "trials" / s["trial_id"] / "dialogue" / "eval.json").exists()
    assert with_dialogue  # the fixture gives every other search trial a dialogue layer
    expected = [t for t in p["samples"] if (c / "trials" / t["trial_id"] / "dialogue" / "eval.json").exists()]
    assert len(with_dialogue) == len(expected)
    shutil.rmtree(c / "trials")  # a campaign whose trial folders were pruned still reports, without samples
    assert collect(c, analyze=False)["samples"] == []


def test_findings_are_computed_live_without_findings_json(campaign_copy):
    (campaign_copy / "findings.json").unlink()
    p = collect(campaign_copy)
    assert p["findings_source"] == "computed" and p["findings"]["n_trials"] > 0
    assert any("no findings.json yet" in n for n in p["notes"])
    off = collect(campaign_copy, analyze=False)
    assert off["findings"] is None and any("switched off" in n for n in off["notes"])


def test_too_few_trials_say_so(tmp_path):
    c = make_campaign(tmp_path / "c", recipes=4, replicated=0, pending=1, running=0, failed=0, findings=False,
                      verify=False)  # fmt: skip
    p = collect(c)
    assert p["findings"] is None and any("at least 4" in n for n in p["notes"])
    assert p["book_ids"] and set(p["book_titles"]) == {""}  # the library is gone: ids only, no error
    assert p["proposal"] is None and p["verification"] is None and p["verify_points"] is None


def test_fresh_campaign_without_trials(tmp_path):
    c = tmp_path / "fresh"
    Store(c / "campaign.sqlite").close()
    p = collect(c)
    assert p["overview"]["total"] == 0 and p["leaderboard"] == [] and p["curves"] == {} and p["samples"] == []
    assert p["forecast"] is None and any(n.startswith("forecast:") for n in p["notes"])
    assert p["campaign"]["objective"]["known"] is False


def test_not_a_campaign_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BookmixError, match=rf"{tmp_path}: not a campaign folder \(no campaign.sqlite\)"):
        collect(tmp_path)


def test_bad_pipeline_yaml_names_the_file(campaign_copy):
    (campaign_copy / "pipeline.yaml").write_text("eval: [unclosed\n", encoding="utf-8")
    with pytest.raises(BookmixError, match="pipeline.yaml: not valid YAML"):
        collect(campaign_copy)


def test_fingerprint_follows_the_store(campaign_copy):
    before = fingerprint(campaign_copy)
    assert fingerprint(campaign_copy) == before
    tid = complete_one_pending(campaign_copy, objective=0.5)
    assert fingerprint(campaign_copy) != before
    p = collect(campaign_copy)
    row = p["leaderboard"][0]
    assert row["trials"].count(tid) == 1  # 0.5 is far below every synthetic loss: its recipe now leads
    others = [
        t["objective"] for t in p["trials"] if t["id"] in row["trials"] and t["id"] != tid and t["state"] == "completed"
    ]
    assert row["mean"] == pytest.approx((0.5 + sum(others)) / (1 + len(others)))


def test_running_flag_follows_the_driver_lock(campaign_copy):
    from bookmix.campaign.lock import CampaignLock

    assert collect(campaign_copy, analyze=False)["campaign"]["running"] is False
    with CampaignLock(campaign_copy):
        assert collect(campaign_copy, analyze=False)["campaign"]["running"] is True
