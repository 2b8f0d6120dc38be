"""Builders of small source files in every supported format, good and bad (written by the tests, never committed)."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

CONTAINER = (
    '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>'
    "</container>"
)


def write_epub(path: Path, chapters: list[str], title: str = "A Test Epub", nav: bool = True) -> Path:
    """An EPUB 3 with a nav document (listed first in the spine, as many real ones do) and one file per chapter."""
    manifest = ['<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'] if nav else []
    spine = ['<itemref idref="nav"/>'] if nav else []
    files = {}
    for i, text in enumerate(chapters):
        paras = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
        files[f"OEBPS/ch{i}.xhtml"] = (
            f'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title>'
            f"<style>p {{margin:0}}</style></head><body><h1>Chapter {i + 1}</h1>{paras}</body></html>"
        )
        manifest.append(f'<item id="c{i}" href="ch{i}.xhtml" media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="c{i}"/>')
    files["OEBPS/nav.xhtml"] = (
        '<html xmlns="http://www.w3.org/1999/xhtml"><body><nav><ol><li>NAVIGATION ENTRY</li></ol></nav></body></html>'
    )
    opf = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{title}</dc:title><dc:creator>Ann Writer</dc:creator><dc:language>en-GB</dc:language>"
        "<dc:date>1901-05-01</dc:date><dc:subject>Sea stories</dc:subject></metadata>"
        f"<manifest>{''.join(manifest)}</manifest><spine>{''.join(spine)}</spine></package>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr("META-INF/container.xml", CONTAINER)
        zf.writestr("OEBPS/content.opf", opf)
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def fb2_bytes(paragraphs: list[str], encoding: str = "utf-8", title: str = "Повесть", lang: str = "ru") -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0" xmlns:l="http://www.w3.org/1999/xlink">'
        "<description><title-info><genre>prose_classic</genre><author><first-name>Иван</first-name>"
        f"<last-name>Тургенев</last-name></author><book-title>{title}</book-title><date value=\"1852-01-01\">1852</date>"
        f"<lang>{lang}</lang></title-info></description>"
        f"<body><title><p>Глава первая</p></title><section>{body}</section></body>"
        '<body name="notes"><section id="n1"><p>ПРИМЕЧАНИЕ ИЗДАТЕЛЯ</p></section></body>'
        "</FictionBook>"
    )
    return xml.encode(encoding)


def zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def gz_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as fh:
        fh.write(data)
    return buf.getvalue()


def gutenberg(body: str, title: str = "The Harbour", author: str = "Jane Roe", old: bool = False) -> str:
    if old:
        return (
            f"The Project Gutenberg Etext of {title} by {author}\n\nCopyright laws are changing all over the world.\n\n"
            f"Title: {title}\n\nAuthor: {author}\n\nRelease Date: May, 1999  [Etext #1234]\n\nLanguage: English\n\n"
            "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nlawyers text\n"
            "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n\n"
            f"{body}\n\nEnd of The Project Gutenberg Etext of {title}\nmore licence text\n"
        )
    return (
        f"\ufeffThe Project Gutenberg eBook of {title}\r\n\r\nTitle: {title}\r\n\r\nAuthor: {author}\r\n\r\n"
        "Release Date: March 3, 2004 [eBook #11592]\r\n\r\nLanguage: English\r\n\r\n"
        f"*** START OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\r\n\r\n\r\n\r\n"
        f"{body.replace(chr(10), chr(13) + chr(10))}\r\n\r\n"
        f"*** END OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\r\n\r\nSection 1. General Terms of Use\r\n"
    )
