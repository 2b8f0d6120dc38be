"""Fixtures for the dashboard tests: a small real library, a synthetic campaign in a real results store, Chromium.

The campaign is made through the campaign room's store API with made-up results (no training): 24 recipes over a
10-book library, replicates, running / pending / failed trials, findings.json and a verification stage.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from support.campaign import WORDS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="session")
def small_library(tmp_path_factory) -> Path:
    """Ten made-up 'books' of word salad with titles (no real book text), ingested into a real library."""
    from support.library import make_library

    rng = np.random.default_rng(0)
    texts = {f"Tale of the {WORDS[i]} {WORDS[i + 1]}": " ".join(rng.choice(WORDS, 800)) for i in range(10)}
    return make_library(tmp_path_factory.mktemp("report_lib"), texts).path


@pytest.fixture(scope="session")
def campaign(tmp_path_factory, small_library) -> Path:
    from support.campaign import make_campaign

    return make_campaign(tmp_path_factory.mktemp("report") / "camp", library=small_library, recipes=24, books_per_set=3)


@pytest.fixture()
def campaign_copy(campaign, tmp_path) -> Path:
    """A private copy a test may write to (record more trials, delete files)."""
    dst = tmp_path / "camp"
    shutil.copytree(campaign, dst)
    return dst


@pytest.fixture()
def serving():
    """Start ``make_server(...)`` servers in threads; they are shut down after the test."""
    servers = []

    def start(campaign_dir: Path, **kwargs):
        from bookmix.report import make_server

        server = make_server(campaign_dir, port=0, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright (skips with the reason when either is missing)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (the CI script installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (bookmix[browser])")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def complete_one_pending(campaign_dir: Path, objective: float = 1.0) -> str:
    """Record a result for one pending trial, as the driver would; returns its id."""
    from bookmix.campaign.spec import TrialResult
    from bookmix.campaign.store import Store

    with Store(campaign_dir / "campaign.sqlite") as store:
        spec = store.specs(state="pending")[0]
        store.mark_running([spec.trial_id], "cuda")
        store.record(TrialResult(trial_id=spec.trial_id, state="completed", device="cuda", objective=objective,
                                 objective_stderr=0.01, tokens=1000, train_seconds=5.0,
                                 curves=[{"name": "loss", "step": s, "tokens": s * 10, "value": 5.0 - s / 100}
                                         for s in range(1, 50)]))  # fmt: skip
    return spec.trial_id
