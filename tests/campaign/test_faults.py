"""Faults, for real: a diverging trial, a worker killed mid-trial, the driver killed by SIGKILL and resumed, and a
second driver refused while the first runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from .conftest import REPO, bookmix_cli, db_rows, pipeline_dict, wait_for, write_pipeline


def test_diverging_trials_are_recorded_and_the_campaign_goes_on(tmp_path, world_library):
    # lr 1e30: the first update overflows the weights, the loss turns NaN — the trainer's divergence detection
    data = pipeline_dict(tmp_path / "c", world_library, train={"lr": 1e30, "max_tokens": 8 * 64 * 6, "grad_clip": 0},
                         search={"designs": [{"design": "random", "n": 2, "books_per_set": 2, "seed": 1}]},
                         seeds={"seeds": [0], "replicates": 0.0}, executor={"trials_per_unit": 2})  # fmt: skip
    path = write_pipeline(tmp_path / "p.yaml", data)
    proc = bookmix_cli("run", str(path), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["trials"]["diverged"] == 2
    errors = [e for (e,) in db_rows(tmp_path / "c", "SELECT error FROM trials")]
    assert all(e.startswith("diverged: loss not finite at step") for e in errors)
    proc = bookmix_cli("status", str(tmp_path / "c"), "--json")
    assert len(json.loads(proc.stdout)["failures"]) == 2
    # --retry-failed runs them again from scratch (they diverge again; nothing is duplicated)
    before = dict(db_rows(tmp_path / "c", "SELECT id, finished_at FROM trials"))
    proc = bookmix_cli("run", str(path), "--retry-failed", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = db_rows(tmp_path / "c", "SELECT id, state, finished_at, attempts FROM trials")
    assert len(after) == 2 and all(s == "diverged" and f > before[t] and a == 1 for t, s, f, a in after)


def _count(camp, state: str) -> int:
    if not (camp / "campaign.sqlite").exists():
        return 0
    try:
        return db_rows(camp, f"SELECT COUNT(*) FROM trials WHERE state='{state}'")[0][0]
    except Exception:  # the driver is creating the tables
        return 0


def _worker_pids(camp) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"{camp}/trials/.*/unit.json"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.slow
def test_kill_9_the_driver_then_resume(tmp_path, world_library):
    camp = tmp_path / "c"
    # 5 recipes, each trial long enough (and checkpointed every 2 steps) to be caught mid-run
    data = pipeline_dict(camp, world_library, train={"max_tokens": 8 * 64 * 40, "checkpoint_every": 2},
                         search={"designs": [{"design": "random", "n": 5, "books_per_set": 3, "seed": 2}]},
                         seeds={"seeds": [0], "replicates": 0.0}, executor={"max_retries": 0})  # fmt: skip
    path = write_pipeline(tmp_path / "p.yaml", data)
    cmd = [sys.executable, "-m", "bookmix", "run", str(path)]
    driver = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _count(camp, "completed") >= 1, 120, "a first completed trial")
        # a second driver is refused while this one runs
        second = bookmix_cli("run", str(path))
        assert second.returncode == 2 and f"already running (pid {driver.pid}" in second.stderr

        # a worker killed mid-trial (a crash, an OOM kill) is recorded failed with the reason, the campaign goes on
        victim = wait_for(lambda: _worker_pids(camp), 60, "a running worker")[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: _count(camp, "failed") == 1, 60, "the crashed trial recorded failed")
        (crashed,) = db_rows(camp, "SELECT id, error FROM trials WHERE state='failed'")
        assert "worker killed by SIGKILL" in crashed[1]

        # now kill the driver itself while a trial has a checkpoint but is not finished
        def mid_trial():
            # a checkpoint well before the end (the driver's 'running' lags a trial that has just finished: killing
            # the driver then would find its result on resume, and nothing would resume)
            for (tid,) in db_rows(camp, "SELECT id FROM trials WHERE state='running'"):
                state, result = camp / "trials" / tid / "checkpoint" / "state.json", camp / "trials" / tid / "result.json"
                try:
                    early = json.loads(state.read_text())["step"] <= 30  # of 40
                except (OSError, ValueError, KeyError):
                    continue
                if early and not result.exists():
                    return tid
            return None

        interrupted = wait_for(mid_trial, 120, "a running trial with a checkpoint")
        done_before = dict(db_rows(camp, "SELECT id, finished_at FROM trials WHERE state='completed'"))
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    wait_for(lambda: not _worker_pids(camp), 10, "the orphaned worker to die with the driver")

    # the same command again: finishes everything, redoes nothing, the interrupted trial resumes from its checkpoint
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = db_rows(camp, "SELECT id, state, finished_at FROM trials")
    assert len(rows) == 5 and len({r[0] for r in rows}) == 5
    states = {r[0]: r[1] for r in rows}
    assert states[crashed[0]] == "failed" and list(states.values()).count("completed") == 4
    for tid, finished in done_before.items():  # finished trials were not redone
        assert dict((r[0], r[2]) for r in rows)[tid] == finished
    log = (camp / "trials" / interrupted / "worker.log").read_text()
    starts = [json.loads(line) for line in log.splitlines() if line.startswith('{"event": "start"')]
    assert len(starts) == 2 and starts[0]["step"] == 0 and starts[1]["step"] > 0  # resumed, not restarted
    assert "resuming: 1 interrupted trial(s)" in (camp / "campaign.log").read_text()
    # curve rows are unique per step even though the interrupted trial ran in two sessions
    steps = [s for (s,) in db_rows(camp, f"SELECT step FROM curves WHERE trial_id='{interrupted}' AND name='loss'")]
    assert steps == sorted(set(steps))
