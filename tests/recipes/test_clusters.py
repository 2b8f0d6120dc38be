"""Topic clusters from token counts: they find planted topics, are seeded, and land in the catalog."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.errors import BookmixError
from bookmix.recipes import cluster_books, make_design
from bookmix.recipes.clusters import hashed_counts, kmeans


def test_hashed_counts_count_every_token():
    books = [np.array([1, 2, 2, 3], np.uint16), np.array([], np.uint16), np.array([7] * 5, np.uint16)]
    c = hashed_counts(books)
    assert c.shape == (3, 4096) and c.sum(axis=1).tolist() == [4, 0, 5] and c[2].max() == 5


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 16)).astype(np.float32) * 5
    truth = rng.integers(0, 4, 3000)
    x = centers[truth] + rng.standard_normal((3000, 16)).astype(np.float32) * 0.3
    _, labels = kmeans(x, 4, seed=1)
    pairs = set(zip(truth.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == 4  # a one-to-one match between planted and found groups
    assert np.array_equal(kmeans(x, 4, seed=1)[1], labels)
    with pytest.raises(BookmixError, match="k: must be between 1 and the number of books"):
        kmeans(x[:3], 5, seed=0)


def test_cluster_books_recovers_topics_and_feeds_designs(small_lib, train_ids):
    labels = cluster_books(small_lib, k=2, seed=0)
    t = small_lib.table(["id", "title", "cluster"])
    topic = np.array([int(title[-3:]) % 2 for title in t["title"]])  # conftest alternates sea / court
    found = t["cluster"]
    assert labels == dict(zip(t["id"].tolist(), found.tolist(), strict=True))
    assert len(set(zip(topic.tolist(), found.tolist(), strict=True))) == 2  # clusters are exactly the topics
    recipes = make_design("stratified", small_lib, n=4, seed=0, books_per_set=4)
    cl = dict(zip(t["id"].tolist(), found.tolist(), strict=True))
    assert all(sorted(np.bincount([cl[b] for b in r.books], minlength=2).tolist()) == [2, 2] for r in recipes)
    assert cluster_books(small_lib, k=2, seed=0) == labels  # re-running gives the same labels
