"""TrialTable construction, input errors, and the noise floor."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.analysis.noise import noise_floor, seed_offsets
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


def _campaign_shaped(rng, n_recipes=120, replicated=30, signal=0.02, seed_common=0.03, interaction=0.01):
    """A search stage at seed 0 for every recipe, then replicates at seeds 1 and 2 for some: value = recipe effect +
    the seed's common effect (the same for every recipe) + a recipe x seed interaction."""
    common = {0: 0.0, 1: seed_common, 2: -seed_common}
    a = rng.normal(0, signal, n_recipes)
    groups, seeds = list(range(n_recipes)), [0] * n_recipes
    for r in range(replicated):
        groups += [r, r]
        seeds += [1, 2]
    groups, seeds = np.array(groups), np.array(seeds)
    values = a[groups] + np.array([common[s] for s in seeds]) + rng.normal(0, interaction, len(groups))
    return values, groups, seeds, a


def test_paired_seeds_remove_the_common_effect_one_way_counts_as_noise():
    values, groups, seeds, _ = _campaign_shaped(np.random.default_rng(3))
    oneway = noise_floor(values, groups, "objective")
    paired = noise_floor(values, groups, "objective", seeds)
    # One-way: the seeds' common effect (std 0.03) lands in the replicate noise; paired: only the interaction (0.01).
    assert oneway.replicate_std > 0.02
    assert paired.replicate_std == pytest.approx(0.01, rel=0.25)
    assert paired.oneway_std == pytest.approx(oneway.replicate_std)
    assert paired.seed_std == pytest.approx(0.03, rel=0.3)
    assert paired.snr > 1.5 and oneway.snr < 1.2
    assert "common effect" in paired.sentence


def test_seed_offsets_are_relative_to_the_search_seed_and_need_multi_seed_recipes():
    values, groups, seeds, _ = _campaign_shaped(np.random.default_rng(4), interaction=0.0)
    off = seed_offsets(values, groups, seeds)
    assert off[0] == 0.0  # the most used seed: search trials keep their values
    assert off[1] == pytest.approx(0.03, abs=1e-9) and off[2] == pytest.approx(-0.03, abs=1e-9)
    # No recipe at two seeds: nothing to estimate, and the floor is the one-way one.
    assert seed_offsets(values[:120], groups[:120], seeds[:120]) == {}
    solo = noise_floor(values[:120], groups[:120], "objective", seeds[:120])
    assert solo.replicate_std is None and solo.seed_std is None


def test_paired_floor_ignores_trials_without_the_metric():
    values, groups, seeds, _ = _campaign_shaped(np.random.default_rng(5))
    values[[0, 5, 130]] = np.nan
    nf = noise_floor(values, groups, "objective", seeds)
    assert nf.n_trials == len(values) - 3 and nf.replicate_std is not None and nf.seed_std is not None
