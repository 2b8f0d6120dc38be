"""Cleaning, language detection and every reader, including each kind of bad input."""

from __future__ import annotations

import gzip
import unicodedata
import zipfile

import pytest

from bookmix.library.clean import clean, normalize
from bookmix.library.langdetect import detect
from bookmix.library.readers import Rejected, read

from .fixtures import fb2_bytes, gutenberg, gz_bytes, write_epub, zip_with
from .helpers import RU_WORDS, prose


def test_modern_gutenberg_header_and_footer_are_stripped() -> None:
    body = prose(1, 6)
    text, meta = clean(gutenberg(body))
    assert text == normalize(body)
    assert "GUTENBERG" not in text and "Terms of Use" not in text and "\r" not in text
    assert meta == {"title": "The Harbour", "author": "Jane Roe", "lang": "en", "release_date": "March 3, 2004"}


def test_old_etext_boilerplate_is_stripped() -> None:
    body = prose(2, 6)
    text, meta = clean(gutenberg(body, title="Old Tale", old=True))
    assert text == normalize(body)
    assert meta["title"] == "Old Tale" and meta["release_date"] == "May, 1999"


def test_text_without_markers_is_kept_whole_and_normalised() -> None:
    raw = "Cafe\u0301 au lait  \n\n\n\n\nSecond\r\npara"
    text, meta = clean(raw)
    assert meta == {}
    assert text == "Café au lait\n\nSecond\npara" and unicodedata.is_normalized("NFC", text)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (prose(3), "en"),
        (prose(4, words=RU_WORDS), "ru"),
        ("Der alte Mann und die Frau sind nicht mit dem Hund auf der Straße, und ich sehe sie nicht. " * 20, "de"),
        ("Le vieux capitaine et la mer, les bateaux dans le port qui ne sont pas des rêves. Il est là. " * 20, "fr"),
        ("12345 67890 ... !!! " * 10, ""),
    ],
)
def test_language_detection(text: str, lang: str) -> None:
    assert detect(text) == lang


def test_txt_gz_and_utf16(tmp_path) -> None:
    (tmp_path / "a.txt.gz").write_bytes(gz_bytes("Привет, мир".encode()))
    assert read(tmp_path / "a.txt.gz").text == "Привет, мир"
    (tmp_path / "b.txt").write_bytes("hello wörld".encode("utf-16"))
    assert read(tmp_path / "b.txt").text == "hello wörld"


def test_epub_reads_chapters_in_spine_order_without_nav(tmp_path) -> None:
    path = write_epub(tmp_path / "book.epub", ["First para.\n\nSecond para.", "Third para &amp; more."])
    doc = read(path)
    assert doc.text.index("Chapter 1") < doc.text.index("First para.") < doc.text.index("Third para & more.")
    assert "NAVIGATION ENTRY" not in doc.text and "margin" not in doc.text
    assert "First para.\n\nSecond para." in doc.text
    assert doc.meta == {"title": "A Test Epub", "author": "Ann Writer", "lang": "en", "year": 1901, "subjects": ["Sea stories"]}


def test_russian_fb2_in_windows_1251_without_notes(tmp_path) -> None:
    data = fb2_bytes(["Первый абзац о море.", "Второй абзац."], encoding="windows-1251")
    assert "Первый".encode() not in data  # really not UTF-8 on disk
    (tmp_path / "a.fb2").write_bytes(data)
    doc = read(tmp_path / "a.fb2")
    assert "Глава первая" in doc.text and "Первый абзац о море.\nВторой абзац." in doc.text
    assert "ПРИМЕЧАНИЕ" not in doc.text
    assert doc.meta == {"title": "Повесть", "author": "Иван Тургенев", "lang": "ru", "year": 1852, "subjects": ["prose_classic"]}
    zip_with(tmp_path / "b.fb2.zip", {"b.fb2": data})
    assert read(tmp_path / "b.fb2.zip").text == doc.text


BAD = {
    "empty.txt": (b"", "empty file"),
    "blank.txt": (b"  \n\n ", "empty file"),
    "binary.txt": (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50, "binary"),
    "latin1.txt": ("café crème ".encode("latin-1") * 100, "not UTF-8"),
    "notes.docx": (b"PK\x03\x04whatever", "unsupported file type"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_plain_files_are_rejected_with_a_reason(tmp_path, name) -> None:
    data, reason = BAD[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(Rejected, match=reason):
        read(tmp_path / name)


def test_bad_archives_and_xml_are_rejected(tmp_path) -> None:
    good = gz_bytes(prose(5).encode() * 10)
    (tmp_path / "trunc.txt.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(Rejected, match="truncated gzip"):
        read(tmp_path / "trunc.txt.gz")
    (tmp_path / "notgz.txt.gz").write_bytes(b"plain text, not gzip at all")
    with pytest.raises(Rejected, match="corrupt gzip"):
        read(tmp_path / "notgz.txt.gz")
    (tmp_path / "bomb.txt.gz").write_bytes(gz_bytes(b"a" * (8 << 20)))
    with pytest.raises(Rejected, match="compression"):
        read(tmp_path / "bomb.txt.gz")
    (tmp_path / "notzip.epub").write_bytes(b"this is not a zip")
    with pytest.raises(Rejected, match="not a valid zip"):
        read(tmp_path / "notzip.epub")
    path = write_epub(tmp_path / "corrupt.epub", ["Hello there."])
    data = bytearray(path.read_bytes())
    i = data.index(b"Hello") if b"Hello" in data else len(data) // 2
    data[i - 200 : i + 200] = b"\x00" * 400
    (tmp_path / "corrupt.epub").write_bytes(bytes(data))
    with pytest.raises(Rejected):
        read(tmp_path / "corrupt.epub")
    zip_with(tmp_path / "slip.fb2.zip", {"../../evil.fb2": fb2_bytes(["x"])})
    with pytest.raises(Rejected, match="unsafe path"):
        read(tmp_path / "slip.fb2.zip")
    with zipfile.ZipFile(tmp_path / "zbomb.epub", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/container.xml", b" " * (4 << 20))
    with pytest.raises(Rejected, match="zip bomb"):
        read(tmp_path / "zbomb.epub")
    (tmp_path / "broken.fb2").write_bytes(fb2_bytes(["ok"])[:-40])
    with pytest.raises(Rejected, match="malformed FB2 XML"):
        read(tmp_path / "broken.fb2")
    (tmp_path / "xxe.fb2").write_bytes(
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><FictionBook>&e;</FictionBook>'
    )
    with pytest.raises(Rejected, match="forbidden XML"):
        read(tmp_path / "xxe.fb2")
    with gzip.open(tmp_path / "ok.txt.gz", "wb") as fh:
        fh.write(b"fine")
    assert read(tmp_path / "ok.txt.gz").text == "fine"


def test_producer_credits_after_the_header_are_dropped() -> None:
    body = "Produced by Some Volunteers\nand a Team.\n\n\nCHAPTER I\n\n" + prose(7, 4)
    text, _ = clean(gutenberg(body))
    assert text.startswith("CHAPTER I") and "Volunteers" not in text


def test_edition_notes_near_the_edges_are_dropped_and_the_book_kept() -> None:
    """Shaped like the notes found in real Gutenberg books (written here, no book text): a front "NOTE:" about the
    edition, a bracketed redactor's note, an indented editorial note with links, a closing "Transcriber's Notes"
    section and a footnote about the eText; an author's own NOTE and a mid-book Gutenberg must stay."""
    story = [prose(30 + i, 3) for i in range(8)]
    front = [
        "NOTE:",
        "This edition was NOT made in the usual Project Gutenberg way; we\nreleased the etext chapter by chapter.",
        "THE HARBOUR\n\n      by Jane Roe",
        "[Redactor's Note: this version is entered into Project Gutenberg\nfor reference purposes only.]",
        "Editorial note:",
        "      The story first ran in a magazine in twelve parts.",
        "      Its illustrations can be seen in the HTML version of this\n      e-book: http://www.example.org/harbour.html",
        "NOTE.",
        "The author wishes to thank the harbour master for his patience.",
        "CHAPTER I",
    ]
    middle = "The printer spoke of Gutenberg and his press with a kind of awe."
    back = [
        "THE END",
        "{1}  This Project Gutenberg eText holds the first volume only.",
        "{2}  The author wrote this in the winter of the storm.",
        "Transcriber's Notes",
        "1. Background.",
        "Our version is based on the first edition; the spelling was kept.",
        "2. Changes.",
        "On Page 19, a missing comma was added.",
    ]
    body = "\n\n".join([*front, *story[:4], middle, *story[4:], *back])
    text, _ = clean(gutenberg(body))
    kept_front = ["THE HARBOUR\n\n      by Jane Roe", "NOTE.", "The author wishes to thank the harbour master for his patience."]
    assert text == "\n\n".join([*kept_front, "CHAPTER I", *story[:4], middle, *story[4:], "THE END", back[2]])
    assert "Project Gutenberg" not in text and "etext" not in text.lower() and "Transcriber" not in text
    # A text that merely starts with an author's NOTE (no edition words anywhere near it) is left alone.
    plain = "NOTE:\n\nThe places in this story are real; the people are not.\n\n" + "\n\n".join(story)
    assert clean(plain)[0] == normalize(plain)
