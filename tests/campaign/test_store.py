"""The results store, trial ids, planning and the executor base's bookkeeping, on a real SQLite file."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pytest

from bookmix.campaign.executors.base import Executor
from bookmix.campaign.lock import CampaignLock, CampaignLocked, is_running
from bookmix.campaign.plan import plan_search, replicate_choice
from bookmix.campaign.spec import TrialResult, TrialSpec, trial_id
from bookmix.campaign.store import Store
from bookmix.config import ExecutorSection, parse_pipeline
from bookmix.errors import BookmixError, ConfigError
from bookmix.training.config import TrainConfig

from .conftest import pipeline_dict


def _spec(tmp_path, tid: str, recipe_id: str = "r1") -> TrialSpec:
    return TrialSpec(
        trial_id=tid, recipe={"id": recipe_id, "books": ["a"]}, seed=0, stage="search", round=0, model={}, train={},
        library="lib", suite="suite.yaml", out_dir=str(tmp_path / "trials" / tid),
    )  # fmt: skip


def test_trial_id_hashes_what_the_run_computes():
    model = {"n_layer": 2, "d_model": 64, "name": "nano"}
    math_a = TrainConfig(micro_batch=16, grad_accum=2).math_fields()
    math_b = TrainConfig(micro_batch=8, grad_accum=4).math_fields()  # same effective batch: same computation
    a = trial_id("r1", model, math_a, 0)
    assert a == trial_id("r1", {**model, "name": "renamed"}, math_a, 0)
    assert a == trial_id("r1", model, math_b, 0)
    assert a != trial_id("r1", model, math_a, 1)
    assert a != trial_id("r2", model, math_a, 0)
    assert a != trial_id("r1", {**model, "d_model": 128}, math_a, 0)
    assert a != trial_id("r1", model, TrainConfig(lr=1e-4).math_fields(), 0)
    assert len(a) == 16 and int(a, 16) >= 0


def test_store_records_once_and_counts(tmp_path):
    store = Store(tmp_path / "c.sqlite")
    specs = [_spec(tmp_path, f"t{i}") for i in range(3)]
    assert store.add_trials(specs) == 3
    assert store.add_trials(specs) == 0  # planning again never duplicates
    store.mark_running(["t0", "t1"], "cpu")
    res = TrialResult(
        trial_id="t0", state="completed", device="cpu", objective=1.5, objective_stderr=0.1,
        metrics={"heldout/loss": {"value": 1.5, "stderr": 0.1}},
        curves=[{"name": "loss", "step": 2, "tokens": 100, "value": 3.0}, {"name": "loss", "step": 4, "tokens": 200, "value": 2.0}],
        tokens=200, train_seconds=1.0,
    )  # fmt: skip
    store.record(res)
    store.record(res)  # a result recorded twice still appears once
    assert store.counts()["completed"] == 1 and store.counts()["running"] == 1
    assert len(store.curves("t0")) == 2
    assert store.metrics("t0") == {"heldout/loss": {"value": 1.5, "stderr": 0.1}}
    assert store.reset_interrupted() == 1  # t1 was running when the driver died
    assert store.counts() == {"pending": 2, "running": 0, "completed": 1, "failed": 0, "diverged": 0}
    store.record(TrialResult.failure("t2", "boom"))
    assert store.trial("t2")["error"] == "boom"
    assert [t["id"] for t in store.reset_failed()] == ["t2"] and store.trial("t2")["state"] == "pending"
    with pytest.raises(BookmixError, match="objective is not recorded"):
        store.records()  # which trials are best is unknown until the campaign records its objective
    store.record_objective({"heldout/loss": 1.0}, "minimize")
    records = store.records()
    assert [r["trial_id"] for r in records] == ["t0"]
    assert records[0]["metrics"] == {"heldout/loss": 1.5} and records[0]["recipe"]["id"] == "r1"
    assert records[0]["objective"] == -1.5  # oriented higher-is-better: a minimised loss is negated
    assert store.records(oriented=False)[0]["objective"] == 1.5
    store.record_objective({"heldout/loss": 1.0}, "minimize")  # a resumed campaign: the same objective is fine
    with pytest.raises(ConfigError, match="started with heldout/loss \\(minimize\\)"):
        store.record_objective({"heldout/loss": 1.0}, "maximize")
    store.close()
    ro = Store(tmp_path / "c.sqlite", readonly=True)
    assert ro.counts()["completed"] == 1
    ro.close()


def test_replicates_are_a_stable_fraction(tmp_path):
    ids = [f"r{i:02d}" for i in range(40)]
    chosen = replicate_choice(ids, 0.1)
    assert len(chosen) == 4
    assert replicate_choice(list(reversed(ids)), 0.1) == [i for i in reversed(ids) if i in chosen]
    assert replicate_choice(ids, 0.0) == [] and len(replicate_choice(ids[:3], 0.1)) == 1

    cfg = parse_pipeline(pipeline_dict(tmp_path / "c", tmp_path / "lib", seeds={"seeds": [0, 1], "replicates": 0.5, "replicate_seeds": 2}))
    recipes = [{"id": f"rec{i}", "books": ["a"]} for i in range(4)]
    specs = plan_search(cfg, recipes, {"n_layer": 1}, 0, tmp_path / "lib")
    assert len(specs) == 4 * 2 + 2 * 2  # every recipe × 2 seeds, then 2 replicated recipes × 2 new seeds
    assert {s.seed for s in specs if s.stage == "replicate"} == {2, 3}
    assert len({s.trial_id for s in specs}) == len(specs)
    assert [s.trial_id for s in plan_search(cfg, recipes, {"n_layer": 1}, 0, tmp_path / "lib")] == [s.trial_id for s in specs]


def test_executor_retries_a_crash_once_then_records_the_reason(tmp_path):
    store = Store(tmp_path / "c.sqlite")
    spec = _spec(tmp_path, "t0")
    store.add_trials([spec])
    ex = Executor(store, ExecutorSection(max_retries=1), logging.getLogger("test"))
    ex.start([spec])
    assert ex.finish([spec], {}, "worker killed by SIGKILL (out of memory?)") == [spec]  # first crash: retried
    ex.start([spec])
    assert ex.finish([spec], {}, "worker killed by SIGKILL (out of memory?)") == []  # second: recorded
    row = store.trial("t0")
    assert row["state"] == "failed" and "SIGKILL" in row["error"] and row["attempts"] == 2
    # a trial's own failure (an exception inside it) is not retried
    spec1 = _spec(tmp_path, "t1")
    store.add_trials([spec1])
    ex.start([spec1])
    assert ex.finish([spec1], {"t1": TrialResult.failure("t1", "ValueError: bad")}) == []
    assert store.trial("t1")["error"] == "ValueError: bad"
    # results a killed driver left in trial folders are recorded without running anything
    spec2 = _spec(tmp_path, "t2")
    store.add_trials([spec2])
    os.makedirs(spec2.out_dir)
    from bookmix.utils.io import atomic_write_json

    atomic_write_json(os.path.join(spec2.out_dir, "trial.json"), TrialResult("t2", "completed", objective=2.0).to_dict())
    assert ex.pending([spec, spec1, spec2]) == []
    assert store.trial("t2")["state"] == "completed"
    store.close()


def test_lock_refuses_a_second_driver_and_takes_over_a_dead_ones(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from bookmix.campaign.lock import CampaignLock
            lock = CampaignLock({str(tmp_path)!r}).acquire()
            print("held", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert is_running(tmp_path)
        with pytest.raises(CampaignLocked, match=f"already running \\(pid {holder.pid} on"):
            CampaignLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock file (with its pid) is stale and is taken over
    assert str(holder.pid) in (tmp_path / "campaign.lock").read_text()
    assert not is_running(tmp_path)
    with CampaignLock(tmp_path) as lock:
        assert lock.holder()["pid"] == os.getpid()
