"""Checkpoint retention and disk use: keep the weights of the trials that matter, delete the rest.

Kept: the top-k completed trials by objective (the dialogue stage's top ``dialogue.top`` ≤ top_k among them: a trial
once outside the top-k never re-enters it), every verification trial, and every trial not finished yet (its
checkpoint is how it resumes). Deleted for the others: the weight files only. Metrics, curves, the resolved config
and the result stay, so a trial can still be analysed and its exact data order rebuilt.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bookmix.campaign.store import Store

WEIGHT_DIRS = ("checkpoint", ".checkpoint.new", ".checkpoint.old", "hf", ".hf.new", ".hf.old", "adapter",
               ".adapter.new", ".adapter.old")
"""Folders of a trial that hold weights: the trainer's checkpoint, an exported or fine-tuned HF model, a LoRA adapter,
and the swap folders each is written through. A trial's ``dialogue/`` layer is not among them: it is its own model."""


def keep_set(store: Store, top_k: int) -> set[str]:
    """The top_k (which holds the dialogue stage's top ≤ top_k), verification trials and unfinished ones."""
    keep = {t["id"] for t in store.ranked()[:top_k]}
    keep |= {t["id"] for t in store.trials() if t["stage"] == "verify" or t["state"] in ("pending", "running")}
    return keep


def apply_retention(store: Store, campaign_dir: Path, top_k: int) -> list[str]:
    """Delete the weights of completed trials outside the keep set; returns the ids whose weights went."""
    keep = keep_set(store, top_k)
    gone = []
    for t in store.trials():
        if t["id"] in keep or t["state"] != "completed" or not t["weights_kept"]:
            continue
        trial_dir = Path(campaign_dir) / "trials" / t["id"]
        for name in WEIGHT_DIRS:
            shutil.rmtree(trial_dir / name, ignore_errors=True)
        gone.append(t["id"])
    store.set_weights_deleted(gone)
    return gone


def disk_usage(path: Path) -> int:
    """Bytes of every regular file under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                continue
    return total
