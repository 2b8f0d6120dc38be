"""A small campaign end to end with the local executor: real designs, real worker subprocesses training real tiny
models, the real eval suite, analysis, retention, a failing trial, re-runs, status and exports."""

from __future__ import annotations

import json

import pytest

from bookmix.library import Library

from .conftest import bookmix_cli, db_rows, pipeline_dict, write_pipeline

N = 13
"""Trials of the campaign below: 5 + 1 (round 0), 2 + 1 (round 1), 4 (verification)."""


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, world_library):
    """One campaign run through the real CLI: round 0 = 5 random recipes of 3 books + 1 replicate, round 1 = 2
    recipes from the analysis, then the proposal against 1 random baseline over 2 seeds; two trials per worker."""
    tmp = tmp_path_factory.mktemp("local")
    data = pipeline_dict(
        tmp / "c",
        world_library,
        search={"designs": [{"design": "random", "n": 5, "books_per_set": 3, "seed": 0}], "rounds": 2, "per_round": 2},
        seeds={"seeds": [0], "replicates": 0.2, "replicate_seeds": 1},
        analysis={"enabled": True, "options": {"n_boot": 20, "folds": 2}},
        verification={"enabled": True, "baselines": 1, "seeds": 2},
        trackers={"tensorboard": True},
        executor={"trials_per_unit": 2},
    )
    path = write_pipeline(tmp / "pipeline.yaml", data)
    proc = bookmix_cli("run", str(path), "--json", timeout=300)
    return tmp / "c", path, proc


def test_run_prints_one_json_object_and_finishes(campaign):
    camp, _, proc = campaign
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert proc.stdout.count("\n") == 1
    # round 0: 5 recipes + ceil(0.2 × 5) = 1 replicate; round 1: 2 recipes (+1 replicate); verify: (1 + 1) × 2 seeds
    assert summary["trials"] == {"pending": 0, "running": 0, "completed": N, "failed": 0, "diverged": 0}
    assert summary["findings"] and (camp / "findings.json").exists()
    findings = json.loads((camp / "findings.json").read_text())
    assert findings["n_trials"] == N - 4 and findings["n_recipes"] == 7  # the search trials of both rounds
    # The objective's terms carry the weights the campaign recorded, beside their signal-to-noise.
    assert any(t["weight"] is not None for t in findings["terms"])
    verification = json.loads((camp / "verification.json").read_text())
    assert {"improvement", "ci", "p_value"} <= set(verification) and verification["n_proposal"] == 2
    assert findings["proposal"]["recipe"]["id"] == verification["proposal"]
    assert (camp / "campaign.log").read_text().count("completed: objective") == N
    rounds = db_rows(camp, "SELECT round, stage, COUNT(*) FROM trials GROUP BY round, stage ORDER BY round, stage")
    assert rounds == [(0, "replicate", 1), (0, "search", 5), (1, "replicate", 1), (1, "search", 2), (2, "verify", 4)]
    assert (camp / "pipeline.yaml").exists() and (camp / "suite.yaml").exists()


def test_metrics_curves_and_replicates_are_stored(campaign):
    camp, _, _ = campaign
    completed = db_rows(camp, "SELECT id, objective, objective_stderr, tokens FROM trials WHERE state='completed'")
    assert all(obj is not None and err is not None and err > 0 and tokens > 0 for _, obj, err, tokens in completed)
    names = {n for (n,) in db_rows(camp, "SELECT DISTINCT name FROM metrics")}
    assert {"heldout/loss", "heldout/bpb", "train/final_loss"} <= names
    assert db_rows(camp, "SELECT COUNT(DISTINCT trial_id) FROM curves WHERE name='loss'")[0][0] == N
    reps = db_rows(camp, "SELECT recipe_id, seed FROM trials WHERE stage='replicate'")
    assert len(reps) == 2 and all(seed == 1 for _, seed in reps)
    for rid, _ in reps:  # each replicated recipe also has its seed-0 trial
        assert db_rows(camp, f"SELECT COUNT(*) FROM trials WHERE recipe_id='{rid}'")[0][0] == 2


def test_retention_keeps_the_top_k_weights(campaign):
    camp, _, _ = campaign
    best = db_rows(camp, "SELECT id FROM trials WHERE state='completed' ORDER BY objective ASC")  # minimised loss
    kept = [tid for (tid,) in best if (camp / "trials" / tid / "checkpoint" / "model.safetensors").exists()]
    verify = {tid for (tid,) in db_rows(camp, "SELECT id FROM trials WHERE stage='verify'")}
    top = [tid for (tid,) in best[:2]]  # top_k = 2, plus every verification trial
    assert set(kept) == set(top) | verify
    assert all((camp / "trials" / tid / "curve.jsonl").exists() for (tid,) in best)  # curves and results stay
    assert db_rows(camp, "SELECT COUNT(*) FROM trials WHERE weights_kept=0")[0][0] == len(set(t for (t,) in best) - set(top) - verify)


def test_status_json(campaign):
    camp, _, _ = campaign
    proc = bookmix_cli("status", str(camp), "--json")
    assert proc.returncode == 0, proc.stderr
    st = json.loads(proc.stdout)
    assert st["trials"]["completed"] == N and st["total"] == N and st["running"] is False
    assert st["disk"]["total_bytes"] > st["disk"]["trials_bytes"] > 0 and st["disk"]["weights_kept"] >= 2
    assert st["best"][0]["objective"] <= st["best"][1]["objective"]
    assert "analysis" in st["stages"] and st["failures"] == []
    # the driver recorded the objective when the campaign started: "best" no longer depends on the suite file
    assert st["objective"] == {"name": "heldout/loss", "direction": "minimize", "weights": {"heldout/loss": 1.0},
                               "maximize": False}
    assert json.loads(db_rows(camp, "SELECT value FROM meta WHERE key='objective'")[0][0])["direction"] == "minimize"


def test_rerun_redoes_nothing(campaign):
    from bookmix.campaign.runner import run_campaign
    from bookmix.config import load_pipeline
    from bookmix.errors import ConfigError

    camp, path, _ = campaign
    before = db_rows(camp, "SELECT id, state, finished_at, attempts FROM trials ORDER BY id")
    summary = run_campaign(load_pipeline(path), show_progress=False)
    assert db_rows(camp, "SELECT id, state, finished_at, attempts FROM trials ORDER BY id") == before
    assert summary.counts["completed"] == N and summary.findings is not None and summary.verification is not None
    # changing what round 0 drew is refused rather than silently mixing two campaigns in one folder
    changed = load_pipeline(path)
    changed.search.designs[0]["seed"] = 99
    with pytest.raises(ConfigError, match="search.designs: changed since"):
        run_campaign(changed, show_progress=False)


def test_export_tables(campaign, tmp_path):
    camp, _, _ = campaign
    proc = bookmix_cli("export", str(camp), "--format", "csv", "--out", str(tmp_path / "r.csv"), "--json")
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert len(lines) == 1 + N and "m:heldout/loss" in lines[0]
    import pyarrow.parquet as pq

    path = camp / "results.parquet"
    assert bookmix_cli("export", str(camp), "--format", "parquet").returncode == 0
    table = pq.read_table(path)
    assert table.num_rows == N and "objective" in table.column_names
    assert table.column("state").to_pylist().count("completed") == N


def test_tensorboard_tracker_wrote_curves(campaign):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    camp, _, _ = campaign
    acc = EventAccumulator(str(camp / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "final/heldout/loss" in tags and len(acc.Scalars("final/heldout/loss")) == N
    assert sum(1 for t in tags if t.endswith("/loss") and not t.startswith("final")) == N


def test_export_axolotl(campaign, tmp_path):
    camp, _, _ = campaign
    best = db_rows(camp, "SELECT id, seed FROM trials WHERE state='completed' ORDER BY objective ASC LIMIT 1")
    out = tmp_path / "ax"
    proc = bookmix_cli("export", "axolotl", best[0][0][:8], "--campaign", str(camp), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"].endswith("axolotl.yaml")
    import yaml

    cfg = yaml.safe_load((out / "axolotl.yaml").read_text())
    assert cfg["base_model"] == "./init_model" and cfg["sequence_len"] == 64 and cfg["curriculum_sampling"] is True
    assert cfg["datasets"][0]["path"] == "./data.jsonl" and cfg["seed"] == best[0][1]
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    spec = json.loads(db_rows(camp, f"SELECT spec FROM trials WHERE id='{best[0][0]}'")[0][0])
    from bookmix.recipes import Recipe

    stream = Recipe.from_dict(spec["recipe"]).stream(Library.open(spec["library"]), 64)
    assert len(rows) == stream.n_windows and all(r["text"] for r in rows)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "init_model")
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1


def test_export_hf_top_k_and_one_trial(campaign, tmp_path):
    """`bookmix export hf CAMPAIGN --top K`: the K best trials that kept their weights, best first, each a folder
    transformers loads with the library's tokenizer; a trial by id; a trial whose weights retention deleted is refused."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bookmix.training.checkpoint import load_model

    camp, _, _ = campaign
    proc = bookmix_cli("export", "hf", str(camp), "--top", "2", "--out", str(tmp_path / "top"), "--json")
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout)["models"]
    ranked = db_rows(camp, "SELECT id FROM trials WHERE state='completed' ORDER BY objective ASC")
    with_weights = [t for (t,) in ranked if (camp / "trials" / t / "checkpoint").is_dir()]
    assert [m["trial_id"] for m in models] == with_weights[:2] and [m["rank"] for m in models] == [1, 2]
    index = json.loads((tmp_path / "top" / "models.json").read_text())
    assert [m["trial_id"] for m in index["models"]] == with_weights[:2]

    best = tmp_path / "top" / f"01-{with_weights[0]}"
    hf = AutoModelForCausalLM.from_pretrained(best, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(best)
    ours, _, _ = load_model(camp / "trials" / with_weights[0])
    ids = torch.tensor([tok("Every morning the baker walked to the river.")["input_ids"]])
    with torch.no_grad():
        assert (hf(input_ids=ids).logits - ours(ids)[0]).abs().max().item() < 1e-4

    proc = bookmix_cli("export", "hf", with_weights[1][:8], "--campaign", str(camp), "--out", str(tmp_path / "one"),
                       "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["models"][0]["trial_id"] == with_weights[1]
    assert (tmp_path / "one" / "tokenizer.json").is_file()

    gone = [t for (t,) in ranked if t not in with_weights]
    assert gone  # top_k 2: retention deleted the weights of the trials below it (verification trials keep theirs)
    proc = bookmix_cli("export", "hf", str(camp / "trials" / gone[0]), "--out", str(tmp_path / "gone"))
    assert proc.returncode == 2 and "weights were deleted" in proc.stderr
