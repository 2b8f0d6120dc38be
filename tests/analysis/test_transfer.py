"""The transfer analysis on hand-made rows whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.analysis.transfer import (
    TransferRow,
    compare_proxies,
    decision_accuracy,
    finding_signs,
    proposal_advantage,
    rank_flips,
    seed_sd,
    spearman,
    transfer_report,
)


def rows_from(proxy: list[float], target: list[float], noise: float = 0.01, roles: list[str] | None = None):
    return [
        TransferRow(f"r{i}", [p - noise, p + noise], [t - noise, t + noise], (roles or [""] * len(proxy))[i])
        for i, (p, t) in enumerate(zip(proxy, target, strict=True))
    ]


def test_identical_ranking_transfers_with_tight_intervals():
    x = list(np.linspace(0, 1, 16))
    r = transfer_report(rows_from(x, [3 * v + 5 for v in x]), n_boot=300)
    assert r.spearman == pytest.approx(1.0) and r.accuracy == pytest.approx(1.0)
    assert r.spearman_ci[0] > 0.95 and r.accuracy_ci[0] > 0.95
    assert r.verdict == "transfers" and r.flips["n_flips"] == 0


def test_reversed_ranking_does_not_transfer_and_every_pair_flips():
    x = list(np.linspace(0, 1, 8))
    r = transfer_report(rows_from(x, [-v for v in x]), n_boot=100)
    assert r.spearman == pytest.approx(-1.0) and r.accuracy == pytest.approx(0.0)
    assert r.verdict == "does not transfer" and "<" in r.reason
    assert r.flips["n_flips"] == r.flips["pairs"] == 28


def test_decision_accuracy_counts_pairs_and_half_credits_proxy_ties():
    assert decision_accuracy(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0])) == pytest.approx(2 / 3)
    assert decision_accuracy(np.array([1.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(0.5)
    assert decision_accuracy(np.array([1.0, 2.0]), np.array([1.0, 1.0])) is None  # target ties decide nothing
    assert spearman(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])) is None


def test_flips_need_both_differences_beyond_their_seed_noise():
    # r0/r1 swap order: by 0.05 at the proxy (noise 0.001) and by 0.05 at the target
    clear = [TransferRow("r0", [1.05, 1.051], [2.0, 2.001]), TransferRow("r1", [1.0, 1.001], [2.05, 2.051]),
             TransferRow("r2", [0.0, 0.001], [0.0, 0.001])]  # fmt: skip
    assert [(f["a"], f["b"]) for f in rank_flips(clear)["flips"]] == [("r0", "r1")]
    # the same swap inside a seed noise of 0.1: opposite order, but no flip beyond noise
    noisy = [TransferRow("r0", [0.95, 1.15], [1.9, 2.1]), TransferRow("r1", [0.9, 1.1], [1.95, 2.15]),
             TransferRow("r2", [0.0, 0.2], [0.0, 0.2])]  # fmt: skip
    f = rank_flips(noisy)
    assert f["opposite"] == 1 and f["n_flips"] == 0
    # one seed a recipe: no noise known, no flip claimed
    single = [TransferRow(r.recipe_id, r.proxy[:1], r.target[:1]) for r in clear]
    assert rank_flips(single)["noise_known"] is False and rank_flips(single)["n_flips"] == 0
    assert seed_sd([[1.0, 3.0], [2.0, 2.0], [5.0]]) == pytest.approx(1.0)


def test_proposal_advantage_holds_or_vanishes_at_the_target():
    roles = ["proposal"] + ["random"] * 5
    holds = proposal_advantage(rows_from([5, 1, 2, 3, 4, 0], [9, 1, 2, 3, 4, 0], roles=roles), "r0")
    assert holds["holds"] and holds["proxy"]["beats"] == 1.0 and holds["target"]["advantage"] > 0
    gone = proposal_advantage(rows_from([5, 1, 2, 3, 4, 0], [0.5, 1, 2, 3, 4, 0], roles=roles), "r0")
    assert not gone["holds"] and gone["target"]["beats"] == pytest.approx(0.2)
    assert proposal_advantage(rows_from([1, 2, 3], [1, 2, 3]), "r0") is None  # no random recipes among the rows


def test_finding_signs_checks_clear_findings_only():
    found = {"books": [{"book": "a", "effect": 0.2, "ci": [0.1, 0.3]}, {"book": "b", "effect": -0.2, "ci": [-0.3, -0.1]},
                       {"book": "c", "effect": 0.1, "ci": [-0.1, 0.3]}],
             "factors": [{"factor": "epochs", "effect": 0.5, "ci": [0.2, 0.8]}]}  # fmt: skip
    target = {"books": [{"book": "a", "effect": 0.05}, {"book": "b", "effect": 0.3}], "factors": []}
    got = {(f["kind"], f["name"]): f["status"] for f in finding_signs(found, target)}
    assert got == {("book", "a"): "kept", ("book", "b"): "reversed", ("factor", "epochs"): "unmeasured"}


def test_compare_proxies_names_the_cheapest_that_transfers():
    x = list(np.linspace(0, 1, 10))
    good = transfer_report(rows_from(x, x), n_boot=50)
    ok = transfer_report(rows_from(x, [x[1], x[0], *x[2:]]), n_boot=50)  # one neighbouring pair swapped
    bad = transfer_report(rows_from(x, list(np.random.default_rng(0).permutation(x))), n_boot=50)
    assert bad.verdict == "does not transfer" and ok.verdict == "transfers" and ok.spearman < good.spearman
    got = compare_proxies({"big": good, "small": ok, "bad": bad}, {"big": 10.0, "small": 1.0, "bad": 0.1})
    assert got["cheapest_transferring"] == "small" and got["best"] == "big"
    none = compare_proxies({"bad": bad})
    assert none["cheapest_transferring"] is None and none["why"].startswith("no proxy transfers")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([TransferRow("a", [1.0], [1.0])] * 3, "appears more than once"),
        (
            [TransferRow("a", [], [1.0]), TransferRow("b", [1.0], [1.0]), TransferRow("c", [1.0], [1.0])],
            "no proxy score",
        ),
        (
            [TransferRow("a", [1.0], [float("nan")]), TransferRow("b", [1.0], [1.0]), TransferRow("c", [1.0], [1.0])],
            "non-finite target",
        ),
        ([TransferRow("a", [1.0], [1.0]), TransferRow("b", [2.0], [2.0])], "at least 3 recipes"),
    ],
)
def test_bad_rows_fail_clearly(rows, message):
    with pytest.raises(ValueError, match=message):
        transfer_report(rows)
