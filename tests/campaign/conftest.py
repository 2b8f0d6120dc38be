"""Fixtures for the campaign tests: one small real storyworld library, and tiny pipelines over it.

Every campaign test trains real (tiny) models in real worker subprocesses; the shapes below keep a trial to a couple
of seconds on two CPU cores, most of it the worker's start-up.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

TINY_MODEL = {"preset": "nano", "overrides": {"n_layer": 1, "n_head": 2, "d_model": 32, "block_size": 64}}
"""One layer, d 32, T 64: a model trains a few hundred windows in well under a second on a CPU."""


@pytest.fixture(scope="session")
def world_library(tmp_path_factory) -> Path:
    """A 12-book storyworld, ingested (vocabulary 512, its own held-out split): the library of every test here."""
    from bookmix.library import ingest
    from bookmix.storyworld import generate

    root = tmp_path_factory.mktemp("campaign_world")
    world = root / "world"
    generate(world, books=12, seed=3, tokens_per_book=1500)
    ingest(
        [world / "books"],
        root / "library",
        tokenizer="train:512",
        holdout_books=world / "holdout.txt",
        metadata=[world / "metadata.csv"],
        workers=1,
    )
    return root / "library"


def pipeline_dict(out: Path, library: Path, **sections) -> dict:
    """A tiny pipeline: 4 random recipes of 3 books, one seed, replicates of 1 recipe, held-out loss objective."""
    data = {
        "campaign": {"name": "t", "out": str(out)},
        "library": {"path": str(library)},
        "search": {"designs": [{"design": "random", "n": 4, "books_per_set": 3, "seed": 0}]},
        "model": copy.deepcopy(TINY_MODEL),
        "train": {"micro_batch": 8, "lr": 0.003, "warmup": 2, "log_every": 2, "max_tokens": 8 * 64 * 12},
        "seeds": {"seeds": [0], "replicates": 0.25, "replicate_seeds": 1},
        "eval": {
            "suite": {
                "name": "tiny",
                "bootstrap": 20,
                "tasks": [{"name": "heldout", "type": "heldout_loss", "max_books": 2, "tokens_per_book": 512, "by": []}],
                "objective": {"metric": "heldout/loss", "direction": "minimize"},
            }
        },
        "selection": {"top_k": 2},
        "analysis": {"enabled": False},
        "report": {"enabled": False},
        "executor": {"kind": "local", "workers": 1, "threads": 1},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def write_pipeline(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def bookmix_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "bookmix", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def wait_for(pred, timeout: float, what: str, every: float = 0.05):  # noqa: ANN001, ANN201
    """Poll ``pred`` until it returns something truthy (returned), or fail after ``timeout`` seconds naming ``what``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def db_rows(campaign: Path, query: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{campaign / 'campaign.sqlite'}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))
