"""The same small campaign on a real local Ray instance (CPU only): tasks train real models, the driver records."""

from __future__ import annotations

import pytest

from .conftest import db_rows, pipeline_dict, write_pipeline


@pytest.mark.slow
def test_campaign_on_a_local_ray_instance(tmp_path, world_library):
    ray = pytest.importorskip("ray")
    from bookmix.campaign.runner import run_campaign
    from bookmix.config import load_pipeline

    data = pipeline_dict(tmp_path / "c", world_library,
                         search={"designs": [{"design": "random", "n": 3, "books_per_set": 2, "seed": 5}]},
                         seeds={"seeds": [0], "replicates": 0.0}, executor={"kind": "ray", "cpus_per_trial": 1})  # fmt: skip
    cfg = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_campaign(cfg, show_progress=False)
        assert ray.is_initialized()  # an instance the caller started is left running for the caller
    finally:
        ray.shutdown()
    assert summary.counts["completed"] == 3
    rows = db_rows(tmp_path / "c", "SELECT state, device, attempts, objective FROM trials")
    assert all(state == "completed" and device == "cpu" and attempts == 1 and obj > 0 for state, device, attempts, obj in rows)
    assert "ray executor: 3 trial(s) in 3 unit(s)" in (tmp_path / "c" / "campaign.log").read_text()
    # the workers left their results and checkpoints in the trial folders, the driver alone wrote the database
    for (tid,) in db_rows(tmp_path / "c", "SELECT id FROM trials"):
        assert (tmp_path / "c" / "trials" / tid / "trial.json").exists()
