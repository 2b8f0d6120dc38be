"""Cleaning raw book text: Project Gutenberg boilerplate off, header metadata read, Unicode and whitespace tidied.

Pure functions of a string. The cleaned text is what gets hashed (the book id) and tokenized.
"""

from __future__ import annotations

import re
import unicodedata

# Modern marker lines: "*** START OF THE PROJECT GUTENBERG EBOOK X ***" (also "THIS", "***START OF", "E-BOOK").
_START = re.compile(r"^\s*\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*$", re.I | re.M)
_END = re.compile(r"^\s*\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^\n]*$", re.I | re.M)
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
_BLANKS = re.compile(r"\n{3,}")  # after trailing spaces are gone, blank-line runs are plain newline runs
_TRAILING = re.compile(r"[ \t]+\n")

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
    text = _TRAILING.sub("\n", text)
    text = _BLANKS.sub("\n\n", text)
    return text.strip()


def strip_gutenberg(text: str) -> tuple[str, dict[str, str]]:
    """Cut the Project Gutenberg header and footer; return the body and the header's fields (lower-case keys).

    Text without any Gutenberg marker is returned unchanged, so the function is safe on every book.
    """
    head_end = 0
    m = _START.search(text)
    if m is None:
        m = _OLD_START.search(text, 0, 200_000)
    if m is not None:
        head_end = m.end()
    fields: dict[str, str] = {}
    if head_end:
        for key, value in _HEADER_FIELD.findall(text[: m.start()]):
            fields.setdefault(key.lower(), " ".join(value.split()))
    body_end = len(text)
    for pat in (_END, _FOOTER):
        e = pat.search(text, head_end)
        if e is not None:
            body_end = min(body_end, e.start())
    body = text[head_end:body_end]
    if head_end:
        body = _drop_edge_notes(body)
    return body, fields


def _drop_edge_notes(body: str) -> str:
    paras = body.strip("\n").split("\n\n")
    lo, hi = 0, len(paras)
    while lo < min(EDGE_PARAGRAPHS, hi) and (not paras[lo].strip() or _EDGE_NOTE.search(paras[lo])):
        lo += 1
    while hi > max(lo, len(paras) - EDGE_PARAGRAPHS) and (not paras[hi - 1].strip() or _EDGE_NOTE.search(paras[hi - 1])):
        hi -= 1
    return "\n\n".join(paras[lo:hi])


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
    return normalize(body), header_meta(fields)
