"""Readers: one source file → its raw text and any metadata the file itself declares.

Formats: ``.txt``, ``.txt.gz``, ``.epub`` (spine order, chapters only), ``.fb2`` and ``.fb2.zip`` (FictionBook, in
its declared encoding, without ``<body name="notes">``). Anything wrong with a file raises :class:`Rejected` with a
reason a person can act on; the ingest records it in ``rejected.jsonl`` and goes on.
"""

from __future__ import annotations

import gzip
import posixpath
import zipfile
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

MAX_BOOK_BYTES = 64 << 20  # 64 MiB of text: ~20x the longest novels; keeps a worker's memory to a few books
MAX_RATIO = 100  # compressed text shrinks 3-5x; 100x and more is a compression bomb, not a book
SUFFIXES = (".txt", ".txt.gz", ".epub", ".fb2", ".fb2.zip")


class Rejected(Exception):
    """A source that cannot become a book; the message is the reason."""


@dataclass
class RawDoc:
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


def kind_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in (".txt.gz", ".fb2.zip", ".txt", ".epub", ".fb2"):
        if name.endswith(suffix):
            return suffix
    return None


def read(path: Path) -> RawDoc:
    kind = kind_of(path)
    if kind is None:
        raise Rejected(f"unsupported file type (expected one of {', '.join(SUFFIXES)})")
    try:
        if kind == ".txt":
            return RawDoc(decode_text(_read_limited(path)))
        if kind == ".txt.gz":
            return RawDoc(decode_text(_gunzip(path)))
        if kind == ".epub":
            return read_epub(path)
        if kind == ".fb2":
            return read_fb2(_read_limited(path))
        return read_fb2(_single_member(path, ".fb2"))
    except OSError as exc:
        raise Rejected(f"cannot read: {exc.strerror or exc}") from exc


# -- plain and gzipped text -----------------------------------------------------------------------------------------
def _read_limited(path: Path) -> bytes:
    size = path.stat().st_size
    if size > MAX_BOOK_BYTES:
        raise Rejected(f"too large: {size} bytes (limit {MAX_BOOK_BYTES})")
    return path.read_bytes()


def _gunzip(path: Path) -> bytes:
    compressed = path.stat().st_size
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read(MAX_BOOK_BYTES + 1)
    except EOFError as exc:
        raise Rejected("truncated gzip (compressed stream ended early)") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise Rejected(f"corrupt gzip ({exc})") from exc
    if len(data) > MAX_BOOK_BYTES:
        raise Rejected(f"decompresses past {MAX_BOOK_BYTES} bytes (compression bomb?)")
    if len(data) > 1 << 20 and len(data) > MAX_RATIO * max(compressed, 1):
        raise Rejected(f"compression ratio {len(data) // max(compressed, 1)}:1 is beyond {MAX_RATIO}:1 (compression bomb?)")
    return data


def decode_text(data: bytes) -> str:
    """Bytes → str: UTF-16 with a BOM, else strict UTF-8; NUL bytes mean a binary file."""
    if not data.strip():
        raise Rejected("empty file")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise Rejected(f"undecodable UTF-16 text ({exc.reason} at byte {exc.start})") from exc
    if b"\x00" in data[:65536]:
        raise Rejected("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Rejected(f"undecodable text: not UTF-8 ({exc.reason} at byte {exc.start})") from exc


# -- zip archives (epub, fb2.zip) -----------------------------------------------------------------------------------
def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise Rejected(f"not a valid zip archive ({exc})") from exc
    total = 0
    for info in zf.infolist():
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise Rejected(f"unsafe path in archive: {name!r}")
        total += info.file_size
        if info.file_size > 1 << 20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            raise Rejected(f"archive member {name!r}: compression ratio {ratio}:1 beyond {MAX_RATIO}:1 (zip bomb?)")
    if total > 4 * MAX_BOOK_BYTES:
        raise Rejected(f"archive unpacks to {total} bytes (limit {4 * MAX_BOOK_BYTES})")
    return zf


def _zip_read(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError as exc:
        raise Rejected(f"archive lacks {name!r}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise Rejected(f"corrupt archive member {name!r} ({exc})") from exc


def _single_member(path: Path, suffix: str) -> bytes:
    with _open_zip(path) as zf:
        names = [n for n in zf.namelist() if n.lower().endswith(suffix)]
        if not names:
            raise Rejected(f"archive holds no {suffix} file")
        return _zip_read(zf, names[0])


# -- XML helpers ----------------------------------------------------------------------------------------------------
def _parse_xml(data: bytes, what: str):
    import defusedxml.ElementTree as ET
    from defusedxml import DefusedXmlException

    try:
        return ET.fromstring(data)
    except DefusedXmlException as exc:
        raise Rejected(f"{what}: forbidden XML construct ({type(exc).__name__})") from exc
    except ET.ParseError as exc:
        raise Rejected(f"malformed {what} XML ({exc})") from exc
    except (LookupError, ValueError) as exc:  # an unknown declared encoding
        raise Rejected(f"{what}: {exc}") from exc


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(el, name: str):
    return [c for c in el if _local(c.tag) == name]


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


# -- EPUB -----------------------------------------------------------------------------------------------------------
class _XhtmlText(HTMLParser):
    """Visible text of an XHTML chapter: block elements become line breaks; head, script and style are dropped."""

    BLOCKS = {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "blockquote", "section", "pre", "hr"}
    HIDDEN = {"head", "script", "style", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(" ".join(data.split()) if data.strip() else (" " if data else ""))

    def text(self) -> str:
        lines = (line.strip() for line in "".join(self.parts).split("\n"))
        out, blank = [], False
        for line in lines:  # per line, not per token: paragraphs separated by one blank line
            if line:
                out.append(line)
                blank = False
            elif not blank and out:
                out.append("")
                blank = True
        return "\n".join(out).strip()


def xhtml_text(data: bytes) -> str:
    parser = _XhtmlText()
    parser.feed(data.decode("utf-8", errors="replace"))
    parser.close()
    return parser.text()


def read_epub(path: Path) -> RawDoc:
    with _open_zip(path) as zf:
        container = _parse_xml(_zip_read(zf, "META-INF/container.xml"), "epub container")
        rootfiles = [el for el in container.iter() if _local(el.tag) == "rootfile"]
        if not rootfiles or not rootfiles[0].get("full-path"):
            raise Rejected("epub container.xml names no package document")
        opf_path = rootfiles[0].get("full-path")
        opf = _parse_xml(_zip_read(zf, opf_path), "epub package")
        base = posixpath.dirname(opf_path)
        meta = _epub_meta(opf)
        manifest = {}
        for item in opf.iter():
            if _local(item.tag) == "item" and item.get("id"):
                manifest[item.get("id")] = item
        chapters = []
        for ref in (el for el in opf.iter() if _local(el.tag) == "itemref"):
            item = manifest.get(ref.get("idref", ""))
            if item is None or ref.get("linear", "yes") == "no":
                continue
            props = (item.get("properties") or "").split()
            href = item.get("href", "")
            if "nav" in props or "html" not in (item.get("media-type") or ""):
                continue  # the navigation document and non-XHTML items are not chapters
            name = posixpath.normpath(posixpath.join(base, href.split("#")[0]))
            text = xhtml_text(_zip_read(zf, name))
            if text:
                chapters.append(text)
        if not chapters:
            raise Rejected("epub has no chapter text in its spine")
        return RawDoc("\n\n".join(chapters), meta)


def _epub_meta(opf) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    subjects = []
    for el in opf.iter():
        name, value = _local(el.tag), _text(el)
        if not value:
            continue
        if name == "title":
            meta.setdefault("title", value)
        elif name == "creator":
            meta.setdefault("author", value)
        elif name == "language":
            meta.setdefault("lang", value.split("-")[0].lower())
        elif name == "date":
            meta.setdefault("year", _year(value))
        elif name == "subject":
            subjects.append(value)
    if subjects:
        meta["subjects"] = subjects
    return {k: v for k, v in meta.items() if v is not None}


def _year(value: str) -> int | None:
    import re

    m = re.search(r"-?\d{3,4}", value)
    return int(m.group()) if m else None


# -- FictionBook ----------------------------------------------------------------------------------------------------
_FB2_PARAGRAPHS = {"p", "v", "subtitle", "text-author"}
_FB2_SKIP_BODIES = {"notes", "comments", "footnotes"}


def read_fb2(data: bytes) -> RawDoc:
    if not data.strip():
        raise Rejected("empty file")
    root = _parse_xml(data, "FB2")
    if _local(root.tag) != "FictionBook":
        raise Rejected(f"not a FictionBook document (root element <{_local(root.tag)}>)")
    meta = _fb2_meta(root)
    paragraphs: list[str] = []
    for body in _children(root, "body"):
        if (body.get("name") or "").lower() in _FB2_SKIP_BODIES:
            continue
        _fb2_walk(body, paragraphs)
    text = "\n".join(paragraphs).strip()
    if not text:
        raise Rejected("FB2 has no body text")
    return RawDoc(text, meta)


def _fb2_walk(el, out: list[str]) -> None:
    for child in el:
        name = _local(child.tag)
        if name in _FB2_PARAGRAPHS:
            out.append(_text(child))
        elif name == "empty-line":
            out.append("")
        elif name in ("section", "poem", "stanza", "cite", "epigraph", "title"):
            _fb2_walk(child, out)
            if name in ("section", "title", "stanza"):
                out.append("")  # a blank line closes a section, title or stanza


def _fb2_meta(root) -> dict[str, Any]:
    desc = next((c for c in root if _local(c.tag) == "description"), None)
    info = next((c for c in desc if _local(c.tag) == "title-info"), None) if desc is not None else None
    if info is None:
        return {}
    meta: dict[str, Any] = {}
    title = _children(info, "book-title")
    if title:
        meta["title"] = _text(title[0])
    authors = []
    for a in _children(info, "author"):
        parts = [_text(p[0]) for p in (_children(a, k) for k in ("first-name", "middle-name", "last-name")) if p]
        name = " ".join(p for p in parts if p) or _text(next(iter(_children(a, "nickname")), None))
        if name:
            authors.append(name)
    if authors:
        meta["author"] = ", ".join(authors)
    lang = _children(info, "lang")
    if lang and _text(lang[0]):
        meta["lang"] = _text(lang[0]).lower()[:2]
    date = _children(info, "date")
    if date:
        year = _year(date[0].get("value") or _text(date[0]))
        if year is not None:
            meta["year"] = year
    genres = [_text(g) for g in _children(info, "genre") if _text(g)]
    if genres:
        meta["subjects"] = genres
    return meta


def suffix_free_name(path: str) -> str:
    """``books/War_and_Peace.txt.gz`` → ``War_and_Peace`` (a title of last resort)."""
    name = Path(path).name
    kind = kind_of(Path(name))
    return name[: -len(kind)] if kind else Path(name).stem
