"""A storyworld is ingestible by the library as it is: its metadata lands in the catalog, its held-out stories in
the holdout split, and its facts survive cleaning and tokenization."""

from __future__ import annotations

import pytest

from bookmix.storyworld import generate


def test_library_ingest_reads_books_metadata_and_holdout(tmp_path):
    library = pytest.importorskip("bookmix.library", reason="the library room is not available")
    manifest = generate(tmp_path / "sw", books=10, seed=2, tokens_per_book=1500)
    library.ingest(**manifest.ingest_kwargs(), library=tmp_path / "lib", tokenizer="train:2048", workers=1)
    lib = library.Library.open(tmp_path / "lib")
    books = lib.books()
    assert len(books) == 10
    by_source = {b.source.rsplit("/", 1)[-1]: b for b in books}
    assert set(by_source) == set(manifest.book_names())
    for name, b in by_source.items():
        entry = manifest.book(name)
        assert (b.title, b.author, b.year, b.lang) == (entry.title, entry.author, entry.year, "en")
        assert b.extra["kind"] == entry.kind and b.extra["genre"] == entry.genre
        assert int(b.extra["difficulty"]) == entry.difficulty
        assert "storyworld" in b.subjects
        assert b.split == ("holdout" if entry.holdout else "train")
    assert {b.split for b in books} == {"train", "holdout"}

    # A fact item's full sentence is in the tokenized book, token for token.
    item = manifest.items("fact_recall")[0]
    fact_book = by_source[item.helps[0]]
    decoded = lib.decode(lib.tokens(fact_book.id))
    assert item.context + item.choices[item.answer] + "." in decoded

    # Story items fit a nano model's 256-token window, with room to spare, under a small (2048) vocabulary.
    contexts = [it.context + it.choices[it.answer] for t in ("scene_link", "entity_recall") for it in manifest.items(t)]
    assert contexts and max(len(ids) for ids in lib.encode(contexts)) <= 200
