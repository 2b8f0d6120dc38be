"""The Library read API other rooms build on (docs/internals.md), on a real library made by the real ingest."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.errors import BookmixError
from bookmix.library import Book, Library
from support.library import make_library

from .helpers import RU_WORDS, prose


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Library:
    texts = {f"en{i}": prose(i) for i in range(12)}
    texts |= {f"ru{i}": prose(100 + i, words=RU_WORDS) for i in range(6)}
    return make_library(
        tmp_path_factory.mktemp("readapi"),
        texts,
        vocab_size=600,
        holdout=0.25,
        seed=3,
        author=[f"Author {i % 3}" for i in range(18)],
        genre=["sea" if i % 2 else "land" for i in range(18)],
        year=[1800 + i for i in range(18)],
    )


def test_books_and_book_round_trip(lib: Library) -> None:
    books = lib.books()
    assert len(books) == 18 and all(isinstance(b, Book) for b in books)
    b = lib.book(books[5].id)
    assert b == books[5]
    assert len(b.id) == 16 and b.sha256.startswith(b.id)
    assert b.author.startswith("Author ") and b.extra["genre"] in ("sea", "land")
    assert b.year is not None and 1800 <= b.year < 1818
    assert set(b.features) == {"mean_word_len", "ttr", "readability", "entropy", "difficulty"}
    assert {x.lang for x in books} == {"en", "ru"}  # detected: the texts declare no language


def test_tokens_decode_to_the_cleaned_text(lib: Library) -> None:
    for b in lib.books(where="title IN ('en3', 'ru2')"):
        toks = lib.tokens(b.id)
        assert toks.dtype == np.uint16 and toks.ndim == 1 and len(toks) == b.tokens
        assert not toks.flags.writeable
        assert lib.eob_id not in toks
        text = lib.decode(toks)
        assert len(text) == b.chars
        assert text.startswith(lib.decode(lib.encode([text[:200]])[0])[:100])


def test_shard_holds_books_separated_by_eob(lib: Library) -> None:
    books = sorted(lib.books(), key=lambda b: (b.shard, b.offset))
    shard = lib.shard(0)
    ends = [b.offset + b.tokens for b in books]
    assert (shard[ends] == lib.eob_id).all()
    assert len(shard) == ends[-1] + 1
    np.testing.assert_array_equal(shard[books[2].offset : ends[2]], lib.tokens(books[2].id))


def test_split_where_and_table(lib: Library) -> None:
    hold = lib.books(split="holdout")
    train = lib.books(split="train")
    assert 1 <= len(hold) <= 10 and len(hold) + len(train) == 18
    assert lib.count(split="holdout") == len(hold)
    ru = lib.books(where="lang = 'ru' AND tokens > 10")
    assert len(ru) == 6 and all(b.lang == "ru" for b in ru)
    t = lib.table(["id", "tokens", "year", "cluster", "lang"], split="train")
    assert t["tokens"].dtype == np.int64 and t["year"].dtype == np.float64
    assert list(t["id"]) == [b.id for b in train]
    assert (t["cluster"] == -1).all()
    assert lib.table(where="json_extract(extra, '$.genre') = 'sea'")["id"].shape == (9,)


def test_set_column_and_sample(lib: Library) -> None:
    ids = [b.id for b in lib.books()]
    assert lib.set_column("cluster", ids, np.arange(18) % 4) == 18
    assert lib.book(ids[6]).cluster == 2
    assert lib.set_column("score", ids[:3], [0.5, 1.5, 2.5]) == 3
    assert lib.book(ids[1]).extra["score"] == 1.5
    assert len(lib.books(where="cluster = 3")) == 4
    s1, s2 = lib.sample(5, seed=1), lib.sample(5, seed=1)
    assert [b.id for b in s1] == [b.id for b in s2] and len({b.id for b in s1}) == 5
    ru = lib.sample(4, seed=5, where="lang = 'ru'")
    assert len({b.id for b in ru}) == 4 and all(b.lang == "ru" for b in ru)
    rare = lib.sample(1, seed=5, where="title = 'en7'")  # under 10% match: the listing path
    assert [b.title for b in rare] == ["en7"]
    with pytest.raises(BookmixError, match="only"):
        lib.sample(50)


def test_bad_queries_and_ids_are_clear(lib: Library, tmp_path) -> None:
    with pytest.raises(BookmixError, match="--where"):
        lib.books(where="no_such_column = 1")
    with pytest.raises(BookmixError, match="not in the library"):
        lib.book("0123456789abcdef")
    with pytest.raises(BookmixError, match="not in the library"):
        lib.tokens("nope")
    with pytest.raises(BookmixError, match="split"):
        lib.books(split="test")
    with pytest.raises(BookmixError, match="not a bookmix library"):
        Library.open(tmp_path)
    with pytest.raises(BookmixError, match="identity"):
        lib.set_column("tokens", [], [])


def test_tokenizer_loads_in_transformers(lib: Library) -> None:
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(tokenizer_file=str(lib.path / "tokenizer.json"), eos_token="<|endofbook|>")
    text = "Старый капитан said: the harbour!"
    assert hf.encode(text) == lib.encode([text])[0].tolist()
    assert hf.eos_token_id == lib.eob_id == 0
    assert hf.decode(hf.encode(text)) == text


def test_stats(lib: Library) -> None:
    s = lib.stats()
    assert s["books"] == 18 and s["vocab_size"] == lib.vocab_size and s["rejected"] == 0
    assert s["tokens"] == sum(b.tokens for b in lib.books())
    assert s["holdout_books"] == lib.count(split="holdout")
