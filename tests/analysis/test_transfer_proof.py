"""Proof on storyworld that a nano-shaped proxy's ranking of recipes transfers to a target ≥ 8× larger, and that a
proxy trained at a bad learning rate or made far too small is reported as not transferring.

The campaign is bench/transfer.py's (one definition): 12 random recipes of a storyworld whose book kinds plant the
ranking (story books help the held-out story loss, noise books hurt), trained at a 2x32 proxy, analysed, then
re-trained over two seeds at a 2x128 target (10x the parameters) and at two bad proxies (lr 5; one layer of width 8).
The settings were chosen on world seed 0; this runs seed 1 (~3 minutes on two CPU cores). When written: Spearman 0.99
[0.89, 1.00], decision accuracy 97% [90%, 100%]; the lr-5 proxy 0.18 (58%), reported as not transferring.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "transfer.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bookmix_bench_transfer", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_storyworld_ranking_transfers_from_nano_proxy_to_8x_target(tmp_path):
    bench = _load_bench()
    fig = bench.run(bench.parser().parse_args(["--seed", "1", "--workers", "2", "--out", str(tmp_path)]))
    assert fig["ratio"] >= 8
    own = fig["proxies"]["campaign"]
    assert own["verdict"] == "transfers"
    assert own["spearman"] >= 0.8 and own["accuracy"] >= 0.8, own
    assert own["spearman_ci"][0] > 0 and own["accuracy_ci"][0] > 0.5  # intervals reported and away from chance
    bad_lr = fig["proxies"]["lr 5"]
    assert bad_lr["verdict"] == "does not transfer", bad_lr
    assert bad_lr["spearman"] < 0.7
    # The 1x8 proxy is not asserted on: it still ranks storyworld's planted signal (story and noise shares, learnable
    # from word counts) at Spearman 0.97, and the README says so.
    assert "cheapest proxy that transfers" in fig["best"]
    assert fig["proposal_holds"] is True
