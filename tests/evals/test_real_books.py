"""Entity-recall item building on real books (English and Russian) from ../shared/books; skipped where absent."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from bookmix.evals.entities import build_entity_items, find_names

pytestmark = pytest.mark.books


def _read(path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read()


def test_names_of_a_real_english_book(shared_books):
    text = _read(shared_books / "en" / "11_Alice_s_Adventures_in_Wonderland.txt.gz")
    names = find_names(text)
    assert {"Alice", "Hatter", "Gryphon", "Duchess"} <= names
    assert not names & {"The", "And", "But", "She", "I"}
    items = build_entity_items(text, names, 20, 800, np.random.default_rng(0))
    assert len(items) == 20
    for it in items:
        assert it["target"].strip() in it["context"]


def test_names_of_a_real_russian_book(shared_books):
    files = sorted((shared_books / "ru").glob("*.txt.gz"))
    text = _read(files[0])
    names = find_names(text)
    assert names and all(re.fullmatch(r"[А-ЯЁA-Z][^\W\d_]+", n) for n in names)
    assert not names & {"Он", "Она", "Но", "И", "Это"}
    items = build_entity_items(text, names, 10, 800, np.random.default_rng(1))
    assert len(items) >= 5
    assert all(it["target"].strip() in names for it in items)
