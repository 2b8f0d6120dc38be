"""The pure pieces: curve thinning and the leaderboard's ranking and error bars."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookmix.report.downsample import downsample, keep_indices, round_sig
from bookmix.report.leaderboard import leaderboard


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), max_points=st.integers(2, 200), seed=st.integers(0, 10_000))
def test_keep_indices_bounds_and_ends(n, max_points, seed):
    x = np.cumsum(np.random.default_rng(seed).uniform(0.1, 5.0, n))
    idx = keep_indices(x, max_points)
    assert len(idx) <= max(n if n <= max_points else max_points, 1)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) > 0)


def test_downsample_spreads_points_evenly_over_irregular_x():
    # dense logging at the start, sparse later: the kept points still cover x evenly, not by index
    x = np.concatenate([np.arange(0, 1000), np.arange(1000, 100_000, 500)])
    y = np.exp(-x / 20_000.0)
    xs, ys = downsample(x, y, 50)
    assert len(xs) <= 50 and xs[0] == 0 and xs[-1] == x[-1]
    gaps = np.diff(xs)
    assert gaps.max() <= 2 * (x[-1] / 49) + 500
    assert ys[0] == 1.0 and abs(ys[-1] - y[-1]) < 1e-4


def test_downsample_sorts_rounds_and_checks_lengths():
    xs, ys = downsample(np.array([3, 1, 2]), np.array([0.123456789, np.nan, 3.0]))
    assert xs == [1, 2, 3] and ys == [None, 3.0, 0.12346]
    assert round_sig(np.array([123456.7, -0.000123456, 0.0, np.inf])) == [123460.0, -0.00012346, 0.0, None]
    with pytest.raises(ValueError, match="differ in length"):
        downsample(np.arange(3), np.arange(4))
    with pytest.raises(ValueError, match="max_points"):
        keep_indices(np.arange(10), 1)


def _t(tid, rid, state="completed", obj=None, se=None, stage="search"):
    return {"id": tid, "recipe_id": rid, "state": state, "objective": obj, "objective_stderr": se, "stage": stage}


RECIPES = {
    "a": {"books": ["b1", "b2"], "order": "random", "sparsity": {"keep": 0.5}, "meta": {"design": "random"}},
    "b": {"books": ["b3"], "grain": "books", "order": "length_asc"},
    "c": {"phases": [{"books": ["b1"], "order": "random"}, {"books": ["b4", "b5"], "order": "random"}]},
}


def test_leaderboard_means_errors_and_direction():
    trials = [
        _t("1", "a", obj=2.0, se=0.05), _t("2", "a", obj=2.4, se=0.05), _t("3", "a", obj=2.2, se=0.05),
        _t("4", "b", obj=2.1, se=0.03), _t("5", "b", state="failed"),
        _t("6", "c", state="pending"),
    ]  # fmt: skip
    rows = leaderboard(trials, RECIPES, maximize=False)
    assert [r["id"] for r in rows] == ["b", "a", "c"]  # lower is better; c has no finished trial
    b, a, c = rows
    assert (
        b["rank"] == 1 and b["mean"] == pytest.approx(2.1) and b["stderr"] == pytest.approx(0.03)
    )  # one seed: eval se
    assert a["mean"] == pytest.approx(2.2)
    assert a["stderr"] == pytest.approx(np.std([2.0, 2.4, 2.2], ddof=1) / np.sqrt(3))  # seeds: se of the mean
    assert b["n_completed"] == 1 and b["n_trials"] == 2 and b["states"] == {"completed": 1, "failed": 1}
    assert c["rank"] is None and c["mean"] is None and c["stderr"] is None
    assert c["books"] == ["b1", "b4", "b5"] and c["phases"][1]["books"] == ["b4", "b5"]
    assert a["keep"] == 0.5 and a["design"] == "random" and b["order"] == "length_asc" and b["grain"] == "books"
    assert [r["id"] for r in leaderboard(trials, RECIPES, maximize=True)] == ["a", "b", "c"]
    assert leaderboard([], RECIPES, maximize=True) == []


def test_leaderboard_ignores_non_finite_objectives():
    rows = leaderboard([_t("1", "a", obj=float("nan")), _t("2", "a", obj=1.0, se=None)], RECIPES, maximize=True)
    assert rows[0]["mean"] == 1.0 and rows[0]["n_completed"] == 1 and rows[0]["stderr"] is None
