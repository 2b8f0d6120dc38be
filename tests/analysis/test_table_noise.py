"""TrialTable construction, input errors, and the noise floor."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.analysis.noise import noise_floor
from bookmix.analysis.table import from_records
from bookmix.errors import BookmixError


def test_table_inclusion_groups_and_settings(default_campaign):
    t = from_records(default_campaign.records)
    assert t.n == 300 and t.inclusion.shape == (300, 40)
    assert np.all(t.set_size == 10)
    # Two seeds per recipe: 150 replicate groups of two trials each.
    assert len(t.group_keys) == 150 and np.all(np.bincount(t.groups) == 2)
    row = default_campaign.records[7]
    cols = set(t.book_ids[t.inclusion[7].indices])
    assert cols == set(row["recipe"]["books"])
    assert set(t.settings["order"]) == {"random", "interleave"}
    assert set(t.settings["sparsity_keep"]) == {1.0, 0.5}
    assert set(t.metrics) == {"loss", "acc"}


def test_bad_records_name_the_field(default_campaign):
    recs = [dict(r) for r in default_campaign.records[:3]]
    recs[1]["objective"] = None
    with pytest.raises(BookmixError, match=r"records\[1\]\.objective: must be a number"):
        from_records(recs)
    recs[1]["objective"] = float("inf")
    with pytest.raises(BookmixError, match=r"records\[1\]\.objective: must be a finite number"):
        from_records(recs)
    recs[1] = {**recs[0], "recipe": {"order": "random"}}
    with pytest.raises(BookmixError, match=r"records\[1\]\.recipe: has no 'books'"):
        from_records(recs)
    with pytest.raises(BookmixError, match="no finished trials"):
        from_records([])


def test_noise_floor_recovers_seed_noise_and_signal():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(200), 3)
    means = rng.normal(0, 0.5, 200)
    values = means[groups] + rng.normal(0, 0.1, 600)
    nf = noise_floor(values, groups, "objective")
    assert nf.replicate_std == pytest.approx(0.1, rel=0.1)
    assert nf.signal_std == pytest.approx(0.5, rel=0.15)
    assert nf.snr > 3 and nf.below_noise is False and nf.p_value < 1e-6


def test_noise_floor_says_plainly_when_recipes_do_not_differ():
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(30), 3)
    values = rng.normal(0, 0.1, 90)  # every recipe identical: only seed noise
    nf = noise_floor(values, groups, "loss")
    assert nf.below_noise is True
    assert "below the noise floor" in nf.sentence and "loss" in nf.sentence


def test_noise_floor_without_replicates_is_unknown_not_zero():
    nf = noise_floor(np.arange(10.0), np.arange(10), "objective")
    assert nf.replicate_std is None and nf.below_noise is None
    assert "noise floor is unknown" in nf.sentence
