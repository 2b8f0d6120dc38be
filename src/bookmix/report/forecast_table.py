"""The dashboard's forecast: what one more trial and the rest of the campaign cost on a few devices.

Built on :func:`bookmix.forecast.estimate`, so the dashboard, ``bookmix estimate`` and the campaign's ETA agree. Pure:
the calibrations are read by the caller and passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bookmix.errors import BookmixError

DEVICES = ("rtx-pro-6000", "h100-sxm", "rtx-4090")
"""The user's workstation card first, then a datacentre and a consumer card for comparison. The CPU is listed only
when it has a calibration: without one its peak would have to be measured while the report is built."""


def forecast_table(
    model: Mapping[str, Any],
    tokens_per_trial: int,
    trials_total: int,
    trials_remaining: int,
    calibrations: Mapping[str, dict | None],
    devices: Sequence[str] = DEVICES,
) -> dict[str, Any]:
    """One row per device: seconds per trial, the whole campaign, what remains; memory and whether it fits."""
    from bookmix.forecast import estimate
    from bookmix.models.config import ModelConfig

    cfg = ModelConfig.from_dict(dict(model))
    rows = []
    for device in devices:
        cal = calibrations.get(device)
        try:
            whole = estimate(
                cfg, tokens=[tokens_per_trial], device=device, trials=max(1, trials_total), calibration=cal
            )
            rest = (
                estimate(
                    cfg,
                    tokens=[tokens_per_trial],
                    device=device,
                    trials=trials_remaining,
                    verify_trials=0,
                    calibration=cal,
                )  # fmt: skip
                if trials_remaining
                else None
            )
        except BookmixError as exc:
            rows.append({"device": device, "error": str(exc)})
            continue
        r = whole.rows[0]
        rows.append(
            {
                "device": device,
                "name": whole.assumptions["device"]["name"],
                "calibrated": whole.throughput.calibrated,
                "mfu": whole.throughput.mfu,
                "tokens_per_s": whole.assumptions["tokens_per_s"],
                "trial_seconds": r.seconds,
                "campaign_seconds": r.campaign_seconds,
                "remaining_seconds": 0.0 if rest is None else rest.rows[0].campaign_seconds,
                "memory_bytes": r.memory_bytes,
                "fits": r.fits,
                "flops_per_trial": r.flops,
            }
        )
    return {
        "model": cfg.name,
        "params": cfg.total_params,
        "tokens_per_trial": int(tokens_per_trial),
        "trials_total": int(trials_total),
        "trials_remaining": int(trials_remaining),
        "rows": rows,
    }
