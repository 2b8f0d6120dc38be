"""The Ray executor: each unit is a Ray task asking for its GPUs and CPUs; results come back to the driver.

Ray re-runs a task whose worker or node was lost (``max_retries``); an exception inside a trial never reaches Ray,
it comes back as a failed TrialResult. Trial folders (checkpoints) must be on a path every node sees, such as a
shared filesystem: a retried task on another node then resumes from the same checkpoint. With no address a local
Ray instance is started for the campaign and stopped at the end.

On a cluster (bookmix installed in the same environment on every node, the library and the campaign folder on a
shared filesystem mounted at the same path everywhere):

    head$    ray start --head --port 6379
    worker$  ray start --address HEAD:6379            # on every GPU node
    head$    bookmix run pipeline.yaml --executor ray --address auto
    # or, from a laptop:  ray job submit --address http://HEAD:8265 -- bookmix run pipeline.yaml --executor ray --address auto

The driver (``bookmix run``) is the only process that writes the results database; kill it and run the same
command again to resume.
"""

from __future__ import annotations

from bookmix.campaign.executors.base import Executor, Unit
from bookmix.campaign.spec import TrialResult, TrialSpec


def _ray_unit(specs: list[dict], packed: bool | None = None) -> list[dict]:
    """Runs on a Ray worker: the same unit of work as a local worker subprocess."""
    import ray

    from bookmix.campaign.worker import run_unit

    device = "cuda" if ray.get_gpu_ids() else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPUs
    return [r.to_dict() for r in run_unit([TrialSpec.from_dict(d) for d in specs], device, packed)]


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, store, settings, log, on_result=None, address: str | None = None) -> None:
        super().__init__(store, settings, log, on_result)
        self.address = address if address is not None else settings.address

    def connect(self):
        """Connect to the cluster at ``address``, or start a local instance; returns (ray, started_here)."""
        from bookmix.utils.ray import connect

        return connect(self.address, self.settings.workers)

    def schedule(self, units: list[Unit]) -> None:
        ray, started_here = self.connect()
        try:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            task = ray.remote(
                num_cpus=self.settings.cpus_per_trial,
                num_gpus=self.settings.gpus_per_trial if has_gpus else 0,
                max_retries=self.settings.max_retries,  # tasks lost with a worker or a node
                retry_exceptions=False,  # trial errors come back as failed results, not exceptions
            )(_ray_unit)
            pending = {}
            for unit in units:
                pending[self._submit(task, unit)] = unit
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                unit = pending.pop(ref)
                try:
                    results = {d["trial_id"]: TrialResult.from_dict(d) for d in ray.get(ref)}
                    crash = None
                except Exception as exc:  # the task died beyond Ray's retries (worker crash, lost node)
                    results, crash = {}, f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
                for spec in self.finish(unit, results, crash):
                    pending[self._submit(task, [spec])] = [spec]
        finally:
            if started_here:
                ray.shutdown()

    def _submit(self, task, unit: Unit):
        self.start(unit, "ray")
        return task.remote([s.to_dict() for s in unit], getattr(self.settings, "packed", None))
