"""Integration on real books (../shared/books): 20 of the smallest, both languages, modern and old Gutenberg
boilerplate, with the shipped catalog and subject sidecars. bench/ingest.py ingests all of them."""

from __future__ import annotations

import csv

import pytest

from bookmix.library import Library, ingest
from bookmix.library.clean import clean, normalize, strip_gutenberg
from bookmix.library.langdetect import detect
from bookmix.library.readers import read

pytestmark = pytest.mark.books


def _subset(books) -> list:
    with open(books / "catalog.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    en = sorted((r for r in rows if r["lang"] == "en"), key=lambda r: int(r["bytes"]))[:15]
    ru = sorted((r for r in rows if r["lang"] == "ru"), key=lambda r: int(r["bytes"]))[:4]
    old = [r for r in rows if r["file"].startswith("en/778_")]  # pre-2005 "Etext" header
    return en + ru + old


def test_ingest_real_books(shared_books, tmp_path) -> None:
    rows = _subset(shared_books)
    files = [shared_books / r["file"] for r in rows]
    report = ingest(
        files,
        tmp_path / "lib",
        tokenizer="train:2048",
        metadata=[shared_books / "catalog.csv", shared_books / "metadata.csv"],
        holdout=0.1,
        workers=2,
    )
    assert report.added == len(rows) == 20 and report.rejected == 0
    lib = Library.open(tmp_path / "lib")
    by_source = {b.source: b for b in lib.books()}
    for r in rows:
        b = by_source[str(shared_books / r["file"])]
        assert (b.title, b.lang, b.year) == (r["title"], r["lang"], int(r["year"]))
        text = lib.decode(lib.tokens(b.id))
        assert len(text) == b.chars and detect(text) == r["lang"]
        edges = (text[:3000] + text[-3000:]).upper()
        assert "PROJECT GUTENBERG" not in edges and "SMALL PRINT" not in edges, b.title
        if r["lang"] == "en":
            assert b.subjects and "gutenberg_id" in b.extra
    ru = lib.books(where="lang = 'ru'")
    en = lib.books(where="lang = 'en'")
    # A BPE that handles Cyrillic: Russian costs at most ~1.6x English tokens per char even at a 2k vocabulary.
    ratio_ru = sum(b.tokens for b in ru) / sum(b.chars for b in ru)
    ratio_en = sum(b.tokens for b in en) / sum(b.chars for b in en)
    assert ratio_ru < 1.6 * ratio_en, (ratio_ru, ratio_en)
    assert all(0 < b.features["ttr"] < 1 and b.features["entropy"] > 5 for b in lib.books())


# Books whose Gutenberg edition carries a transcriber's or editor's note beside the licence (ids 27, 244, 1400, ...).
NOTED = ("27_", "244_", "1400_", "18857_", "2759_", "4274_", "5231_", "650_")


def test_edition_notes_are_gone_from_real_books(shared_books) -> None:
    for prefix in NOTED:
        path = next((shared_books / "en").glob(prefix + "*"))
        raw = read(path).text
        text, _ = clean(raw)
        whole = normalize(strip_gutenberg(raw.replace("\r\n", "\n"))[0])
        assert "PROJECT GUTENBERG" not in (text[:5000] + text[-5000:]).upper(), path.name
        assert 0 < len(whole) - len(text) < 4000, path.name  # a note went, no chapter with it
        assert text[5000 : len(text) // 2] in whole  # the body between the edges is untouched
