"""The executor base (datatrove-style): it owns what happens around one unit of work, schedulers own only when and
where units run.

A *unit* is a list of trials one worker runs (``executor.trials_per_unit`` of them, or ``auto``: :func:`unit_size`): one after
another, or, when ``executor.packed`` says so (on a GPU by default), same-shape trials stacked into one packed model
(``bookmix.training.packed``). The base

- skips trials already finished in the store, and records results a killed driver left in trial folders unrecorded,
- marks a unit running, then records each result (the driver is the only writer of the results database),
- turns a worker that died without a result into a failure with its reason, retrying crashes and out-of-memory
  errors up to ``max_retries`` times before recording the trial failed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.campaign.store import Store
from bookmix.campaign.worker import is_finetune, read_result, result_path

FINAL = ("completed", "failed", "diverged")
Unit = list[TrialSpec]

AUTO_CPU_UNIT = 4
"""``trials_per_unit: auto`` without a GPU: 4 trials per worker pay the worker's start-up (torch import, ~3-5 s) once for 4
trials; more would only lose more work when a worker crashes."""


def unit_size(trials: int | str, spec: TrialSpec) -> int:
    """Trials per unit: ``trials`` as given, or for ``auto`` the packed trainer's size on this machine's GPU (memory and
    the point where a pack keeps the GPU busy: ``auto_pack_size``), :data:`AUTO_CPU_UNIT` without one."""
    if trials != "auto":
        return max(1, int(trials))
    import torch

    if is_finetune(spec) or not torch.cuda.is_available():
        return AUTO_CPU_UNIT
    from bookmix.models.config import ModelConfig
    from bookmix.training.config import TrainConfig
    from bookmix.training.pack_size import auto_pack_size

    total = torch.cuda.get_device_properties(0).total_memory  # no CUDA context in the driver: just the size
    return auto_pack_size(ModelConfig.from_dict(spec.model), TrainConfig.from_dict(spec.train), "cuda", available=total)


class Executor:
    name = "base"

    def __init__(
        self,
        store: Store,
        settings,
        log: logging.Logger,
        on_result: Callable[[TrialSpec, TrialResult], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.log = log
        self.on_result = on_result

    # ---- what the schedulers call ----------------------------------------------------------------------------
    def run(self, specs: list[TrialSpec]) -> None:
        """Run every trial of ``specs`` that is not finished yet."""
        todo = self.pending(specs)
        if not todo:
            return
        pack = unit_size(getattr(self.settings, "trials_per_unit", 1), todo[0])
        units = [todo[i : i + pack] for i in range(0, len(todo), pack)]
        self.log.info("%s executor: %d trial(s) in %d unit(s)", self.name, len(todo), len(units))
        self.schedule(units)

    def schedule(self, units: list[Unit]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def pending(self, specs: list[TrialSpec]) -> list[TrialSpec]:
        """Trials still to run; results a previous driver left unrecorded in trial folders are recorded now."""
        todo = []
        for spec in specs:
            row = self.store.trial(spec.trial_id)
            if row is not None and row["state"] in FINAL:
                continue
            left = read_result(spec)
            if left is not None and left.state in ("completed", "diverged"):
                self.log.info("trial %s: recording the result a previous run left", spec.trial_id)
                self.record(spec, left)
                continue
            todo.append(spec)
        return todo

    def start(self, unit: Unit, device: str = "") -> None:
        """Mark a unit running, clearing any stale failure result from a previous attempt."""
        for spec in unit:
            with contextlib.suppress(FileNotFoundError):
                result_path(spec).unlink()
        self.store.mark_running([s.trial_id for s in unit], device)
        self.log.info("start %s", ", ".join(s.trial_id for s in unit))

    def finish(self, unit: Unit, results: dict[str, TrialResult], crash: str | None = None) -> list[TrialSpec]:
        """Record a unit's results; returns the trials to run again (crashed or out of memory, retries left)."""
        retry = []
        for spec in unit:
            res = results.get(spec.trial_id) or read_result(spec)
            lost = res is None or res.oom  # the worker died (crash, OOM kill) or ran out of memory: worth a retry
            if res is None:
                res = TrialResult.failure(spec.trial_id, crash or "worker ended without a result")
            attempts = (self.store.trial(spec.trial_id) or {}).get("attempts", 1)
            if lost and attempts <= self.settings.max_retries:
                self.log.warning("trial %s: %s; retrying (attempt %d)", spec.trial_id, res.error, attempts + 1)
                retry.append(spec)
                continue
            self.record(spec, res)
        return retry

    def record(self, spec: TrialSpec, res: TrialResult) -> None:
        self.store.record(res)
        if res.state == "completed":
            self.log.info("trial %s completed: objective %s (%s)", spec.trial_id, res.objective, res.device)
        else:
            self.log.warning("trial %s %s: %s", spec.trial_id, res.state, res.error)
        if self.on_result is not None:
            self.on_result(spec, res)
