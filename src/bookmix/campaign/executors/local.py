"""The local executor: each unit runs in its own worker subprocess, so a crash or an out-of-memory kill in one trial
never takes the campaign down.

With GPUs, one worker per GPU (each sees only its own through CUDA_VISIBLE_DEVICES); on a CPU, one worker with a
couple of threads by default, since two trainings on two cores only slow each other down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bookmix.campaign.executors.base import Executor, Unit
from bookmix.campaign.worker import read_result
from bookmix.utils.io import atomic_write_json

POLL_SECONDS = 0.2
WORKER_MAIN = "import sys; from bookmix.campaign.worker import main; sys.exit(main(sys.argv[1:]))"
"""The worker's entry (not ``-m bookmix.campaign.worker``: the package imports that module first, which runpy warns
about)."""


@dataclass
class _Running:
    unit: Unit
    proc: subprocess.Popen
    slot: int
    log: IO[bytes]
    log_path: Path
    recorded: set[str] = field(default_factory=set)
    """Trials of the unit already recorded while the worker went on with the next ones (packs)."""

    def unrecorded(self) -> Unit:
        return [s for s in self.unit if s.trial_id not in self.recorded]


def device_slots(workers: int | None) -> list[tuple[str, dict[str, str]]]:
    """(device, extra environment) for each concurrent worker."""
    n_gpu = 0
    try:
        import torch

        n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if n_gpu:
        return [("cuda", {"CUDA_VISIBLE_DEVICES": str(i % n_gpu)}) for i in range(workers or n_gpu)]
    return [("cpu", {"CUDA_VISIBLE_DEVICES": ""}) for _ in range(workers or 1)]


def describe_exit(code: int, log_path: Path) -> str:
    """Why a worker died, for the trial's error column."""
    if code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        why = f"worker killed by {sig}{hint}"
    else:
        why = f"worker crashed (exit code {code})"
    try:
        lines = [ln for ln in log_path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    return f"{why}: {lines[-1].strip()}" if lines else why


class LocalExecutor(Executor):
    name = "local"

    def schedule(self, units: list[Unit]) -> None:
        slots = device_slots(self.settings.workers)
        free = deque(range(len(slots)))
        queue: deque[Unit] = deque(units)
        running: list[_Running] = []
        try:
            while queue or running:
                while queue and free:
                    running.append(self._launch(queue.popleft(), free.popleft(), slots))
                time.sleep(POLL_SECONDS)
                for job in running:
                    self._record_finished(job)
                for job in [j for j in running if j.proc.poll() is not None]:
                    running.remove(job)
                    free.append(job.slot)
                    job.log.close()
                    code = job.proc.returncode
                    crash = None if code == 0 else describe_exit(code, job.log_path)
                    for spec in self.finish(job.unrecorded(), {}, crash):
                        queue.append([spec])  # retried alone: a crash in a pack costs only the unfinished trials
        finally:
            for job in running:  # interrupted: stop our own workers, their checkpoints let them continue later
                job.proc.kill()
                job.proc.wait()
                job.log.close()

    def _record_finished(self, job: _Running) -> None:
        """Record the trials of a pack as the worker finishes them (progress, and less to redo after a kill)."""
        for spec in job.unrecorded():
            res = read_result(spec)
            if res is not None and not res.oom:
                self.record(spec, res)
                job.recorded.add(spec.trial_id)

    def _launch(self, unit: Unit, slot: int, slots: list[tuple[str, dict[str, str]]]) -> _Running:
        device, extra_env = slots[slot]
        self.start(unit, device)
        first = Path(unit[0].out_dir)
        first.mkdir(parents=True, exist_ok=True)
        unit_file = first / "unit.json"
        packed = getattr(self.settings, "packed", None)
        atomic_write_json(
            unit_file,
            {"specs": [s.to_dict() for s in unit], "device": device, "packed": packed, "driver_pid": os.getpid()},
        )
        threads = str(unit[0].threads)
        env = {**os.environ, **extra_env, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        log_path = first / "worker.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed when the worker ends
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, str(unit_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        return _Running(unit, proc, slot, log, log_path)

