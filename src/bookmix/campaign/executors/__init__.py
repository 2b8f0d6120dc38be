"""Executors: the base runs and records units of work; ``local`` and ``ray`` only differ in how they schedule them."""

from __future__ import annotations

from bookmix.campaign.executors.base import Executor
from bookmix.errors import BookmixError


def make_executor(kind: str, store, settings, log, on_result=None, address: str | None = None) -> Executor:
    """The executor named in the pipeline (or on the command line)."""
    if kind == "local":
        from bookmix.campaign.executors.local import LocalExecutor

        return LocalExecutor(store, settings, log, on_result)
    if kind == "ray":
        from bookmix.campaign.executors.ray_executor import RayExecutor

        return RayExecutor(store, settings, log, on_result, address=address)
    raise BookmixError(f"executor: unknown kind {kind!r}; choose local or ray")


__all__ = ["Executor", "make_executor"]
