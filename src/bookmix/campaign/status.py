"""Reading a campaign without disturbing it: status (counts, disk use, best trials) and the results table.

Everything here opens the results database read-only, so it is safe while the driver runs (WAL readers never block
the writer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bookmix.campaign.lock import is_running
from bookmix.campaign.retention import disk_usage
from bookmix.campaign.store import open_campaign


def campaign_status(campaign_dir: str | Path, top: int = 5) -> dict[str, Any]:
    """Trial counts by state, stages done, disk use, the best trials and the failures."""
    campaign_dir = Path(campaign_dir)
    with open_campaign(campaign_dir) as store:
        counts = store.counts()
        trials = store.trials()
        stages = store.stages()
        objective = store.objective()
        done = store.ranked() if objective else []
    trials_dir = campaign_dir / "trials"
    return {
        "campaign": str(campaign_dir),
        "running": is_running(campaign_dir),
        "trials": counts,
        "total": sum(counts.values()),
        "stages": stages,
        "objective": objective,
        "disk": {
            "total_bytes": disk_usage(campaign_dir),
            "trials_bytes": disk_usage(trials_dir) if trials_dir.exists() else 0,
            "weights_kept": sum(1 for t in trials if t["weights_kept"] and t["state"] == "completed"),
        },
        "best": [
            {k: t[k] for k in ("id", "recipe_id", "seed", "stage", "objective", "objective_stderr")} for t in done[:top]
        ],
        "failures": [{"id": t["id"], "state": t["state"], "error": t["error"]} for t in trials if t["state"] in ("failed", "diverged")],
    }


def results_table(campaign_dir: str | Path) -> list[dict[str, Any]]:
    """One row per trial: ids, seed, stage, state, timings, objective and one column per metric (``m:<name>``)."""
    with open_campaign(campaign_dir) as store:
        trials = store.trials()
        metrics = store.all_metrics()
    names = sorted({n for m in metrics.values() for n in m})
    rows = []
    for t in trials:
        spec = json.loads(t["spec"])
        row = {
            "trial_id": t["id"],
            "recipe_id": t["recipe_id"],
            "seed": t["seed"],
            "stage": t["stage"],
            "round": t["round"],
            "state": t["state"],
            "device": t["device"],
            "books": len(spec["recipe"].get("books") or []),
            "tokens": t["tokens"],
            "train_seconds": t["train_seconds"],
            "eval_seconds": t["eval_seconds"],
            "objective": t["objective"],
            "objective_stderr": t["objective_stderr"],
            "error": t["error"],
        }
        for n in names:
            row[f"m:{n}"] = metrics.get(t["id"], {}).get(n)
        rows.append(row)
    return rows
