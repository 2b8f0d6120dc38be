"""Pure rules: which chunks sparsity keeps, and how each order sequences books."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookmix.errors import BookmixError
from bookmix.recipes.order import order_books
from bookmix.recipes.recipe import Sparsity
from bookmix.recipes.sparsity import book_rng, kept_chunks, n_kept

patterns = st.sampled_from(["prefix", "stride", "random", "contiguous_random"])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), keep=st.floats(0.001, 1.0), pattern=patterns, seed=st.integers(0, 2**31))
def test_kept_chunks_do_what_the_pattern_says(n, keep, pattern, seed):
    kept = kept_chunks(n, Sparsity(keep=keep, pattern=pattern), np.random.default_rng(seed))
    k = n_kept(n, keep)
    assert len(kept) == k == max(1, min(n, int(keep * n + 0.5)))
    assert (np.diff(kept) > 0).all() and kept[0] >= 0 and kept[-1] < n  # sorted, distinct, in range
    gaps = np.diff(kept)
    if pattern == "prefix":
        assert kept.tolist() == list(range(k))
    elif pattern == "contiguous_random":
        assert (gaps == 1).all()
    elif pattern == "stride" and k > 1:
        assert gaps.max() - gaps.min() <= 1 and kept[0] == 0  # evenly spaced from the start


def test_random_patterns_are_seeded_per_book():
    sp = Sparsity(keep=0.3, pattern="random")
    a = kept_chunks(100, sp, book_rng(1, "a" * 16))
    assert np.array_equal(a, kept_chunks(100, sp, book_rng(1, "a" * 16)))
    assert not np.array_equal(a, kept_chunks(100, sp, book_rng(2, "a" * 16)))
    assert not np.array_equal(a, kept_chunks(100, sp, book_rng(1, "b" * 16)))


def test_random_coverage_is_uniform():
    sp = Sparsity(keep=0.25, pattern="random")
    hits = np.zeros(40)
    for s in range(400):
        hits[kept_chunks(40, sp, np.random.default_rng(s))] += 1
    assert hits.sum() == 400 * 10 and hits.min() > 60 and hits.max() < 140  # expected 100 each


def test_sorting_orders_with_unknowns_last():
    cols = {"tokens": np.array([5, 3, 9, 3]), "year": np.array([1900.0, np.nan, 1850.0, 1870.0])}
    rng = np.random.default_rng(0)
    assert order_books("length_asc", cols, 4, rng).tolist() == [1, 3, 0, 2]  # ties keep listing order
    assert order_books("length_desc", cols, 4, rng).tolist() == [2, 0, 1, 3]
    assert order_books("year_asc", cols, 4, rng).tolist() == [2, 3, 0, 1]
    assert order_books("year_desc", cols, 4, rng).tolist() == [0, 3, 2, 1]
    assert order_books("as_listed", cols, 4, rng).tolist() == [0, 1, 2, 3]
    with pytest.raises(BookmixError, match="difficulty"):
        order_books("difficulty_asc", cols, 4, rng)


def test_cluster_blocks_keep_each_cluster_together():
    labels = np.array([2, 0, 1, 2, 0, 1, 2, 0, -1])
    for seed in range(5):
        perm = order_books("cluster_blocks", {"cluster": labels}, 9, np.random.default_rng(seed))
        seq = labels[perm]
        assert sorted(perm.tolist()) == list(range(9))
        assert (np.diff(seq) != 0).sum() == 3  # 4 blocks: each cluster (and the unclustered) appears as one run
    with pytest.raises(BookmixError, match="bookmix recipe cluster"):
        order_books("cluster_blocks", {"cluster": np.full(3, -1)}, 3, np.random.default_rng(0))


def test_sampling_helpers_draw_distinct_rows_uniformly():
    from bookmix.recipes.sampling import Groups, sample_distinct

    rng = np.random.default_rng(0)
    for n, k in [(10, 10), (1000, 5), (50, 20)]:
        d = sample_distinct(rng, n, k)
        assert len(set(d.tolist())) == k and d.min() >= 0 and d.max() < n
    labels = np.array([0] * 3 + [1] * 500 + [2] * 2)
    g = Groups(labels)
    hits = np.zeros(len(labels))
    for _ in range(300):  # group 0 asks for all 3 of its rows: the vectorised draw repeats, the fallback must not
        rows = g.draw(rng, np.array([3, 4, 1]))
        assert len(set(rows.tolist())) == 8 and np.bincount(labels[rows], minlength=3).tolist() == [3, 4, 1]
        hits[rows] += 1
    assert hits[:3].tolist() == [300] * 3 and 0 < hits[3:503].max() < 15 and hits[503:].sum() == 300
