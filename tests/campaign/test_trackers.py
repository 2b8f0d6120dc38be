"""The optional trackers, each where it runs offline: MLflow into a local SQLite store, W&B in offline mode.
(TensorBoard is checked inside the end-to-end campaign test.)"""

from __future__ import annotations

import logging

import pytest

from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.campaign.trackers import Trackers
from bookmix.config import TrackersSection


def _trial() -> tuple[TrialSpec, TrialResult]:
    spec = TrialSpec(trial_id="abc123", recipe={"id": "r1"}, seed=3, stage="search", round=0, model={}, train={},
                     library="lib", suite="s.yaml", out_dir="unused")  # fmt: skip
    res = TrialResult(
        trial_id="abc123", state="completed", objective=4.5,
        metrics={"heldout/loss": {"value": 4.5, "stderr": 0.1}, "facts/acc@group=x": {"value": 0.5, "stderr": 0.05}},
        curves=[{"name": "loss", "step": s, "tokens": 10 * s, "value": 6.0 - s / 10} for s in (2, 4, 6)],
    )  # fmt: skip
    return spec, res


@pytest.mark.slow
def test_mlflow_local_sqlite(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    tr = Trackers(TrackersSection(mlflow=True), tmp_path, "camp", logging.getLogger("t"))
    tr.log_trial(*_trial())
    tr.close()
    assert (tmp_path / "mlflow.db").exists()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["camp"], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == "abc123"
    data = runs[0].data
    assert data.params["recipe_id"] == "r1" and data.metrics["heldout/loss"] == 4.5
    history = mlflow.tracking.MlflowClient().get_metric_history(runs[0].info.run_id, "loss")
    assert [m.step for m in history] == [2, 4, 6]


@pytest.mark.slow
def test_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    tr = Trackers(TrackersSection(wandb=True), tmp_path, "camp", logging.getLogger("t"))
    tr.log_trial(*_trial())
    tr.close()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
