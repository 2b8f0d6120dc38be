"""Connecting to Ray, shared by every scheduler that runs on it (campaign trials, library ingest/dedup/scoring)."""

from __future__ import annotations

from bookmix.errors import BookmixError, require


def connect(address: str | None, num_cpus: int | None, what: str = "executor.address"):
    """Connect to the cluster at ``address`` (``auto`` or ``HOST:PORT``), or start a local instance with ``num_cpus``.

    Returns ``(ray, started_here)``: an instance the caller already started is used and left running.
    """
    ray = require("ray", "cluster", "the Ray executor")
    if ray.is_initialized():
        return ray, False
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local instance"
        raise BookmixError(f"{what}: cannot start or reach Ray at {where}: {exc}") from None
    return ray, True
