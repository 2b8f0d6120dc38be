"""Reading a campaign's results for the analysis: the one place that knows the campaign room's store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bookmix.errors import BookmixError

# The stages whose trials describe the recipe space; verification trials compare one proposal with baselines and
# would bias the book effects towards the proposal's books.
ANALYSED_STAGES = ("search", "replicate")
# Trained like search trials but never fitted: the analysis predicts them (the out-of-sample check).
HOLDOUT_STAGES = ("oos",)


def load_campaign(campaign_dir: str | Path) -> tuple[list[dict[str, Any]], Any]:
    """(records oriented higher-is-better, the campaign's open Library or None when it has moved)."""
    records, _, library = load_campaign_holdout(campaign_dir)
    return records, library


def load_campaign_holdout(campaign_dir: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """(search records, out-of-sample records, Library or None), records oriented higher-is-better."""
    from bookmix.campaign.runner import oriented_records
    from bookmix.campaign.status import _maximize, open_store

    campaign_dir = Path(campaign_dir)
    with open_store(campaign_dir) as store:
        maximize = _maximize(campaign_dir)
        records = oriented_records(store, maximize, ANALYSED_STAGES)
        holdout = oriented_records(store, maximize, HOLDOUT_STAGES)
        row = store.conn.execute("SELECT spec FROM trials LIMIT 1").fetchone()
    if not records:
        raise BookmixError(f"{campaign_dir}: no completed search trial to analyse (see `bookmix status`)")
    library = None
    lib_path = json.loads(row[0]).get("library") if row else None
    if lib_path and Path(lib_path).exists():
        from bookmix.library import Library

        library = Library.open(lib_path)
    return records, holdout, library
