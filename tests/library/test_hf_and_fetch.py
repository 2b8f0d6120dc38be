"""Sources over the wire or from datasets: a Hugging Face parquet corpus on disk, and the Gutenberg fetcher against
a real HTTP server on 127.0.0.1 serving the site's URL layout."""

from __future__ import annotations

import pytest

from bookmix.library import Library, ingest
from bookmix.library.fetch import fetch_gutenberg
from bookmix.library.sources import HFFields

from .fixtures import gutenberg
from .helpers import RU_WORDS, prose


def test_hf_parquet_source_streams_records_with_fields(tmp_path, monkeypatch) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    texts = [prose(i, 8) for i in range(5)] + [prose(9, 8, RU_WORDS), "tiny", prose(0, 8)]
    table = pa.table(
        {
            "book_text": texts,
            "book_id": [f"pg{i}" for i in range(len(texts))],
            "short_book_title": [f"Title {i}" for i in range(len(texts))],
            "publication_date": ["1851", "1900", None, "1700", "1999", "1861", "1", "1851"],
            "url": [f"http://x/{i}" for i in range(len(texts))],
        }
    )
    path = tmp_path / "corpus.parquet"
    pq.write_table(table, path, row_group_size=3)
    fields = HFFields(text="book_text", id="book_id", title="short_book_title", year="publication_date")
    report = ingest([f"hf:{path}"], tmp_path / "lib", tokenizer="train:500", hf_fields=fields, workers=1, min_chars=200)
    assert (report.added, report.rejected, report.duplicates) == (6, 1, 1)
    lib = Library.open(tmp_path / "lib")
    b = lib.books(where="title = 'Title 5'")[0]
    assert b.lang == "ru" and b.year == 1861 and b.source.endswith("#pg5") and b.extra["url"] == "http://x/5"
    assert lib.books(where="title = 'Title 2'")[0].year is None
    again = ingest([f"hf:{path}"], tmp_path / "lib", hf_fields=fields, workers=1, min_chars=200)
    assert (again.added, again.skipped) == (0, 8)


@pytest.fixture
def site(tmp_path, http_site):
    root = tmp_path / "site"
    for i in (11, 84, 1342):
        d = root / "cache" / "epub" / str(i)
        d.mkdir(parents=True)
        (d / f"pg{i}.txt").write_text(gutenberg(prose(i, 30), title=f"Book {i}"), encoding="utf-8")
    (root / "browse" / "scores").mkdir(parents=True)
    (root / "browse" / "scores" / "top").write_text(
        '<ol><li><a href="/ebooks/1342">P</a></li><li><a href="/ebooks/84">F</a></li>'
        '<li><a href="/ebooks/1342">dup</a></li><li><a href="/ebooks/11">A</a></li></ol>'
    )
    return http_site({"/" + f.relative_to(root).as_posix(): f.read_bytes() for f in root.rglob("*") if f.is_file()})


def test_fetch_ids_with_retries_and_resume(site, tmp_path) -> None:
    url, handler = site
    handler.fail_first["/cache/epub/84/pg84.txt"] = 2
    handler.truncate_once.add("/cache/epub/11/pg11.txt")
    out = tmp_path / "out"
    r = fetch_gutenberg(out, ids=[11, 84, 999], mirror=url, delay=0.0, retries=3)
    assert r.fetched == [84] and set(r.failed) == {11, 999}
    assert "404" in r.failed[999] and "resume" in r.failed[11]
    assert (out / "pg84.txt").read_text(encoding="utf-8").startswith("\ufeffThe Project Gutenberg eBook of Book 84")
    assert (out / ".pg11.txt.part").exists() and not (out / "pg11.txt").exists()
    r2 = fetch_gutenberg(out, ids=[11, 84], mirror=url, delay=0.0)
    assert (r2.fetched, r2.skipped) == ([11], [84])
    assert (out / "pg11.txt").read_bytes() == handler.files["/cache/epub/11/pg11.txt"]
    ranged = [rng for path, rng, _ in handler.log if path.endswith("pg11.txt") and rng]
    assert ranged and ranged[-1] != "bytes=0-"  # the second run continued the partial file


def test_fetch_top_is_polite_and_ingestable(site, tmp_path) -> None:
    import time

    url, handler = site
    t0 = time.monotonic()
    r = fetch_gutenberg(tmp_path / "out", top=2, mirror=url, delay=0.2)
    assert r.fetched == [1342, 84]
    assert time.monotonic() - t0 >= 0.4  # three requests, 0.2 s apart
    report = ingest([tmp_path / "out"], tmp_path / "lib", tokenizer="train:400", workers=1)
    assert report.added == 2
    titles = {b.title for b in Library.open(tmp_path / "lib").books()}
    assert titles == {"Book 1342", "Book 84"}
