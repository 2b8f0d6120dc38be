"""Optional experiment trackers (TensorBoard, MLflow with a local SQLite store, Weights & Biases offline).

The driver logs each recorded trial: its loss curve and final metrics. Everything is written inside the campaign
folder and works without a network. Each tracker is imported only when switched on, and a missing package fails
before any work with the extra to install.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.errors import require


class Trackers:
    def __init__(self, settings, campaign_dir: Path, name: str, log: logging.Logger) -> None:
        self.dir = Path(campaign_dir)
        self.name = name
        self.log = log
        self.tb = None
        self.logged = 0
        self.mlflow = None
        self.wandb = None
        if settings.tensorboard:
            require("tensorboard", "track", "TensorBoard logging")  # torch.utils.tensorboard needs it
            tb = require("torch.utils.tensorboard", "track", "TensorBoard logging")
            self.tb = tb.SummaryWriter(log_dir=str(self.dir / "tensorboard"))
        if settings.mlflow:
            self.mlflow = require("mlflow", "track", "MLflow tracking")
            self.mlflow.set_tracking_uri(f"sqlite:///{self.dir / 'mlflow.db'}")
            self.mlflow.set_experiment(name)
        if settings.wandb:
            self.wandb = require("wandb", "track", "Weights & Biases tracking")

    def log_trial(self, spec: TrialSpec, res: TrialResult) -> None:
        if res.state != "completed":
            return
        try:
            self._log(spec, res)
        except Exception as exc:  # a tracker must never take the campaign down
            self.log.warning("tracker failed for trial %s: %s", spec.trial_id, exc)

    def _log(self, spec: TrialSpec, res: TrialResult) -> None:
        values = {k: m["value"] for k, m in res.metrics.items() if m.get("value") is not None}
        if res.objective is not None:
            values["objective"] = res.objective
        if self.tb is not None:
            for row in res.curves:
                self.tb.add_scalar(f"{spec.trial_id}/{row['name']}", row["value"], row["step"])
            for k, v in values.items():
                self.tb.add_scalar(f"final/{k}", v, self.logged)  # x axis: trials in the order they finished
            self.tb.flush()
        if self.mlflow is not None:
            with self.mlflow.start_run(run_name=spec.trial_id):
                self.mlflow.log_params({"recipe_id": spec.recipe_id, "seed": spec.seed, "stage": spec.stage})
                for row in res.curves:
                    self.mlflow.log_metric(_safe(row["name"]), row["value"], step=row["step"])
                self.mlflow.log_metrics({_safe(k): v for k, v in values.items()})
        if self.wandb is not None:
            run = self.wandb.init(
                mode="offline",
                dir=str(self.dir),
                project=self.name,
                name=spec.trial_id,
                config={"recipe_id": spec.recipe_id, "seed": spec.seed, "stage": spec.stage},
                reinit="finish_previous",
            )
            for row in res.curves:
                run.log({row["name"]: row["value"]}, step=row["step"])
            run.summary.update(values)
            run.finish()
        self.logged += 1

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _safe(name: str) -> str:
    """MLflow metric names allow only letters, digits and _-./ and spaces."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)
