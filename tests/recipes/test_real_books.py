"""On real public-domain books (../shared/books; skipped where absent): language clusters and exact streams."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest

from bookmix.recipes import Recipe, cluster_books, make_design

pytestmark = pytest.mark.books

CHARS = 60_000  # the opening of each book: enough text for unigram counts, small enough to ingest in a second


@pytest.fixture(scope="module")
def real_lib(shared_books, tmp_path_factory):
    from support.library import make_library

    with open(shared_books / "catalog.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    picked = []
    for lang in ("en", "ru"):
        mine = sorted((r for r in rows if r["lang"] == lang), key=lambda r: int(r["bytes"]))[:4]
        picked += mine
    texts = {}
    for r in picked:
        with gzip.open(shared_books / r["file"], "rt", encoding="utf-8", errors="replace") as fh:
            texts[f"{r['lang']}_{len(texts):02d}"] = fh.read(CHARS)
    return make_library(tmp_path_factory.mktemp("real"), texts, vocab_size=1024, lang=[r["lang"] for r in picked])


def test_clusters_of_real_books_follow_their_language(real_lib):
    labels = cluster_books(real_lib, k=2, seed=0)
    t = real_lib.table(["id", "lang"])
    pairs = {(lang, labels[b]) for b, lang in zip(t["id"].tolist(), t["lang"].tolist(), strict=True)}
    assert len(pairs) == 2  # each language is exactly one cluster
    recipes = make_design("stratified", real_lib, n=3, seed=0, books_per_set=4, by="lang")
    lang = dict(zip(t["id"].tolist(), t["lang"].tolist(), strict=True))
    assert all(sorted(lang[b] for b in r.books) == ["en", "en", "ru", "ru"] for r in recipes)


def test_windows_of_real_books_decode_to_their_text(real_lib):
    ids = real_lib.table(["id"])["id"].tolist()
    s = Recipe.from_dict({"books": ids, "sparsity": {"keep": 0.3, "pattern": "random", "chunk_tokens": 256}}).stream(
        real_lib, 64
    )
    w = s.windows(0, s.n_windows)
    views = [np.lib.stride_tricks.sliding_window_view(np.asarray(real_lib.tokens(b)), 65)[::64] for b in ids]
    for row in w:  # each window is one aligned stretch of one real book
        assert sum(int((v == row).all(axis=1).sum()) for v in views) == 1
    assert len(real_lib.decode(w[0])) > 64  # and it decodes to text
