"""Cleaning raw book text: Project Gutenberg boilerplate off, header metadata read, Unicode and whitespace tidied.

Pure functions of a string. The cleaned text is what gets hashed (the book id) and tokenized.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

# Modern marker lines: "*** START OF THE PROJECT GUTENBERG EBOOK X ***" (also "THIS", "***START OF", "E-BOOK"), with
# only blanks before the stars on their line. The patterns open with the literal stars, which Python's regex engine
# scans for fast (a pattern opening with ^\s* under re.M is tried at every line and ran 10x slower on real books).
_START = re.compile(r"\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*", re.I)
_END = re.compile(r"\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*", re.I)
# The pre-2005 "Etext" header ends with the small print; its footer starts with "End of (the) Project Gutenberg...".
_OLD_START = re.compile(r"^[^\n]*\*END\*?\s*THE SMALL PRINT[^\n]*$", re.I | re.M)
_FOOTER = re.compile(
    r"^[ \t*]*(?:(?:The )?End of (?:the |this )?Project Gutenberg(?:'s|’s)?\b|(?:The )?Project Gutenberg(?:'s)? Etext of\b)[^\n]*$",
    re.I | re.M,
)
_HEADER_FIELD = re.compile(r"^(Title|Author|Language|Release Date|Posting Date):[ \t]*(.+(?:\n[ \t]+\S.*)*)$", re.M)
# Producer credits and transcriber notes next to the header or footer ("Produced by ...", "This etext was
# proofread by ...", "The end of the Project Gutenberg e-text of ...") are not the book: edge paragraphs that
# mention these words are dropped (at most a few, and only at the edges).
_EDGE_NOTE = re.compile(r"project gutenberg|\be-?texts?\b|\be-?books?\b|produced by|transcriber|proofread", re.I)
EDGE_PARAGRAPHS = 3
# After trailing blanks are gone, blank-line runs are plain newline runs; spelt with a literal prefix (4x faster).
_BLANKS = re.compile(r"\n\n\n+")

# Transcriber's and editor's notes about the Gutenberg edition, just inside the boilerplate ("NOTE: This edition has
# NOT been prepared in a normal Project Gutenberg methodology ...", "[Redactor's Note: ... entered into Project
# Gutenberg ...]", "Transcriber's Notes" closing the book). A note starts at a heading paragraph ("Transcriber's
# Notes:", "Editorial note:", "NOTE:"), at a paragraph that opens with such a label, or at a paragraph naming
# Project Gutenberg; it runs on while paragraphs with edition words keep coming (gaps of NOTE_GAP at most) and is cut
# only if it holds such a word: a bare "NOTE." by the author, with none, stays.
NOTE_ZONE = 20_000  # chars at each end searched for notes (at most a quarter of the book each): the front matter
NOTE_GAP = 2  # paragraphs without an edition word a note may hold between two that have one
NOTE_MAX = 12_000  # chars one note may span before it is no longer taken for a note
_NOTE_LABEL = (
    r"[\[\s]*(?:original\s+)?(?:project\s+gutenberg\s+)?"
    r"(?:(?:transcriber|editor|editorial|redactor|producer|production|etext|e-?book)(?:['’]s)?\s+)?notes?"
)
_NOTE_HEAD = re.compile(_NOTE_LABEL + r"\s*[:.]?\s*$", re.I)
_NOTE_OPENS = re.compile(r"[\[\s]*(?:original\s+)?(?:project\s+gutenberg\s+)?(?:transcriber|editor|redactor|producer)(?:['’]s)?\s+notes?\s*:", re.I)
_TO_THE_END = re.compile(r"transcriber|production|gutenberg", re.I)  # such a heading near the end closes the book
_PG = re.compile(r"project\s+gutenberg", re.I)
_EDITION_WORD = re.compile(
    r"project\s+gutenberg|\bPG\b|\be-?texts?\b|\be-?books?\b|transcriber|https?://|www\.|\.html?\b|\.zip\b", re.I
)

LANG_NAMES = {
    "english": "en",
    "russian": "ru",
    "german": "de",
    "french": "fr",
    "spanish": "es",
    "italian": "it",
    "dutch": "nl",
    "portuguese": "pt",
    "latin": "la",
    "finnish": "fi",
}


def normalize(text: str) -> str:
    """NFC, LF line endings, no BOM, no trailing spaces, runs of blank lines collapsed to one, trimmed."""
    text = text.lstrip("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if " \n" in text or "\t\n" in text:  # few books have trailing blanks; a C-speed test spares the rest the work
        text = "\n".join([line.rstrip(" \t") for line in text.split("\n")])
    text = _BLANKS.sub("\n\n", text)
    return text.strip()


def strip_gutenberg(text: str) -> tuple[str, dict[str, str]]:
    """Cut the Project Gutenberg header and footer; return the body and the header's fields (lower-case keys).

    Text without any Gutenberg marker is returned unchanged, so the function is safe on every book.
    """
    head_end = 0
    m = _marker(_START, text, 0)
    if m is None:
        old = _OLD_START.search(text, 0, 200_000)
        m = None if old is None else (old.start(), old.end())
    if m is not None:
        head_end = m[1]
    fields: dict[str, str] = {}
    if head_end:
        for key, value in _HEADER_FIELD.findall(text[: m[0]]):
            fields.setdefault(key.lower(), " ".join(value.split()))
    body_end = len(text)
    end = _marker(_END, text, head_end)
    if end is not None:
        body_end = end[0]
    footer = _old_footer(text, head_end, body_end)
    if footer is not None:
        body_end = footer
    body = text[head_end:body_end]
    if head_end:
        body = _drop_edge_notes(body)
    return body, fields


def _marker(pattern: re.Pattern, text: str, pos: int) -> tuple[int, int] | None:
    """(start of its line, end of its line) of the first match of a marker with only blanks before it on its line."""
    for m in pattern.finditer(text, pos):
        line = text.rfind("\n", 0, m.start()) + 1
        if not text[line : m.start()].strip():
            return line, m.end()
    return None


def _old_footer(text: str, pos: int, end: int) -> int | None:
    """Start of the first old-style footer line ("End of the Project Gutenberg Etext of ...") in ``text[pos:end]``:
    lines naming Project Gutenberg are found with a plain find on the lower-cased text, then checked with _FOOTER."""
    low = text[pos:end].lower()
    at = low.find("project gutenberg")
    while at >= 0:
        line = text.rfind("\n", 0, pos + at) + 1
        if _FOOTER.match(text, line):
            return line
        at = low.find("project gutenberg", at + 17)
    return None


def _drop_edge_notes(body: str) -> str:
    paras = body.strip("\n").split("\n\n")
    lo, hi = 0, len(paras)
    while lo < min(EDGE_PARAGRAPHS, hi) and (not paras[lo].strip() or _EDGE_NOTE.search(paras[lo])):
        lo += 1
    while hi > max(lo, len(paras) - EDGE_PARAGRAPHS) and (not paras[hi - 1].strip() or _EDGE_NOTE.search(paras[hi - 1])):
        hi -= 1
    return "\n\n".join(paras[lo:hi])


def strip_edition_notes(text: str) -> str:
    """Drop notes about the Gutenberg edition that sit near the start or the end of a normalised text."""
    paras = text.split("\n\n")
    starts = np.cumsum([0] + [len(p) + 2 for p in paras[:-1]]) if paras else np.zeros(0, int)
    zone = min(NOTE_ZONE, len(text) // 4)
    drop = np.zeros(len(paras), dtype=bool)
    i = 0
    while i < len(paras) and starts[i] < zone:  # the front
        end = _note_end(paras, starts, i, len(paras))
        if end is None:
            i += 1
        else:
            drop[i : end + 1] = True
            i = end + 1
    first = max(int(np.searchsorted(starts, len(text) - zone)), int(np.flatnonzero(drop).max(initial=-1)) + 1)
    stop = len(paras)
    for i in range(first, len(paras)):  # a "Transcriber's Notes" section near the end runs to the end
        if _NOTE_HEAD.match(paras[i]) and _TO_THE_END.search(paras[i]) and any(map(_EDITION_WORD.search, paras[i:])):
            drop[i:] = True
            stop = i
            break
    i = first
    while i < stop:  # other notes in the back zone
        end = _note_end(paras, starts, i, stop)
        if end is None:
            i += 1
        else:
            drop[i : end + 1] = True
            i = end + 1
    if not drop.any():
        return text
    return "\n\n".join(p for p, d in zip(paras, drop, strict=True) if not d)


def _note_end(paras: list[str], starts, i: int, stop: int) -> int | None:
    """If a note starts at paragraph ``i``, the index of its last paragraph (before ``stop``); else None."""
    p = paras[i]
    head = len(p) <= 80 and _NOTE_HEAD.match(p) is not None
    if not (head or _NOTE_OPENS.match(p) or _PG.search(p)):
        return None
    last = i if _EDITION_WORD.search(p) else None
    k = i + 1
    while k < stop and k - (last if last is not None else i) <= NOTE_GAP and starts[k] - starts[i] < NOTE_MAX:
        if _EDITION_WORD.search(paras[k]):
            last = k
        k += 1
    return last


def header_meta(fields: dict[str, str]) -> dict[str, str]:
    """Gutenberg header fields → catalog metadata (title, author, lang) and ``release_date`` for ``extra``."""
    meta: dict[str, str] = {}
    if fields.get("title"):
        meta["title"] = fields["title"]
    if fields.get("author"):
        meta["author"] = fields["author"]
    if fields.get("language"):
        name = fields["language"].split(",")[0].split(" and ")[0].strip().lower()
        meta["lang"] = LANG_NAMES.get(name, name[:2])
    date = fields.get("release date") or fields.get("posting date")
    if date:
        meta["release_date"] = re.sub(r"\s*\[.*$", "", date).strip()
    return meta


def clean(raw: str) -> tuple[str, dict[str, str]]:
    """Raw decoded text → (cleaned text, metadata read from a Gutenberg header if there was one)."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    body, fields = strip_gutenberg(raw)
    return strip_edition_notes(normalize(body)), header_meta(fields)
