"""Injected faults: simulate a GPU running out of memory, or a loss turning NaN, on any device.

The trainer's recovery paths (out-of-memory backoff, divergence detection) are real code that real GPUs reach only
in rare runs; these hooks let the tests drive them deterministically on CPU. Production runs pass no injector.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FaultInjector:
    oom_above_micro_batch: int | None = None
    """Raise torch.OutOfMemoryError for any forward pass over more windows than this (a fake allocator limit)."""
    nan_at_step: int | None = None
    """Turn the loss of this optimizer step (0-based) into NaN, as an exploding run would."""

    def check_memory(self, windows: int) -> None:
        if self.oom_above_micro_batch is not None and windows > self.oom_above_micro_batch:
            raise torch.OutOfMemoryError(f"injected: {windows} windows > limit {self.oom_above_micro_batch}")

    def corrupt(self, loss: torch.Tensor, step: int) -> torch.Tensor:
        return loss * float("nan") if step == self.nan_at_step else loss
