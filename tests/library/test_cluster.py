"""Scale: an ingest split across two Ray workers (a real local Ray instance) gives the same catalog and token store
as one process, and so do dedup signatures and scores; a scanned-book corpus whose text is a list of pages, with its
metadata columns, maps into the catalog."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from bookmix.library import Library, ingest
from bookmix.library.sources import HFFields

from .helpers import RU_WORDS, prose


def _books(folder: Path, n: int = 14) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):  # books of uneven length, so Ray tasks finish out of order
        (folder / f"book{i:02d}.txt").write_text(
            prose(i, 4 + 9 * (i % 5), RU_WORDS if i % 4 == 3 else None), encoding="utf-8"
        )
    (folder / f"book{n:02d}.txt").write_text(prose(0, 4), encoding="utf-8")  # an exact duplicate of book00
    return folder


def _dump(root: Path) -> dict:
    con = sqlite3.connect(root / "catalog.sqlite")
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(books)")]
        keep = [c for c in cols if c != "source"]  # the same files, read under the same paths: compared apart below
        books = con.execute(
            f"SELECT {', '.join(chr(34) + c + chr(34) for c in keep)} FROM books ORDER BY rowid"
        ).fetchall()
        sources = con.execute("SELECT key, status, book_id, reason FROM sources ORDER BY key").fetchall()
        minhash = con.execute("SELECT id, sig FROM minhash ORDER BY id").fetchall() if "dup_of" in cols else []
    finally:
        con.close()
    shards = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((root / "tokens").glob("*.bin"))}
    tok = hashlib.sha256((root / "tokenizer.json").read_bytes()).hexdigest()
    return {"books": books, "sources": sources, "minhash": minhash, "shards": shards, "tokenizer": tok}


@pytest.mark.slow
def test_ray_ingest_dedup_and_score_match_one_process(tmp_path) -> None:
    ray = pytest.importorskip("ray")
    pytest.importorskip("datasketch")
    from bookmix.library.dedup import dedup
    from bookmix.library.score import score

    src = _books(tmp_path / "src")
    kw = {"tokenizer": "train:600", "holdout": 0.2, "min_chars": 200, "shard_bytes": 20_000}  # several shards
    one = ingest([src], tmp_path / "one", workers=1, **kw)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        two = ingest([src], tmp_path / "two", workers=2, executor="ray", **kw)
        assert ray.is_initialized()  # an instance the caller started is left to the caller
        for name, workers, executor in (("one", 1, "local"), ("two", 2, "ray")):
            lib = Library.open(tmp_path / name)
            dedup(lib, workers=workers, executor=executor)
            score(lib, windows=4, window_tokens=64, workers=workers, executor=executor)
    finally:
        ray.shutdown()
    assert (one.added, one.duplicates) == (two.added, two.duplicates) == (14, 1)
    a, b = _dump(tmp_path / "one"), _dump(tmp_path / "two")
    assert len(a["shards"]) > 1 and a["minhash"]
    assert a == b


def test_hf_pages_and_metadata_columns(tmp_path, monkeypatch) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    pages = [[prose(i, 3), "", prose(i + 10, 3), prose(i + 20, 2)] for i in range(3)]
    table = pa.table(
        {
            "barcode": ["39015001", "39015002", "39015003"],
            "title_src": ["Sea Tales", "Hill Songs", "Road Notes"],
            "author_src": ["Roe, Jane", "Doe, John", "Roe, Jane"],
            "date1_src": ["1871", "1902", "18uu"],
            "language_gen": ["en", "en", "en"],
            "topic_or_subject_src": [["Sea stories", "Harbours"], ["Poetry"], []],
            "page_count_src": [4, 4, 4],
            "text_by_page_gen": pages,
        }
    )
    path = tmp_path / "scans.parquet"
    pq.write_table(table, path)
    fields = HFFields(text="text_by_page_gen", id="barcode", title="title_src", author="author_src", lang="language_gen",
                      year="date1_src", subjects="topic_or_subject_src")  # fmt: skip
    report = ingest([f"hf:{path}"], tmp_path / "lib", tokenizer="train:500", hf_fields=fields, workers=1, min_chars=200)
    assert report.added == 3
    lib = Library.open(tmp_path / "lib")
    b = lib.books(where="title = 'Sea Tales'")[0]
    assert (b.author, b.lang, b.year, b.subjects) == ("Roe, Jane", "en", 1871, ["Sea stories", "Harbours"])
    assert b.extra["page_count_src"] == 4 and b.source.endswith("#39015001")
    text = lib.decode(lib.tokens(b.id))
    # every non-empty page, in order, a paragraph break between pages
    assert text.index(prose(0, 3)[:80]) < text.index(prose(10, 3)[:80]) < text.index(prose(20, 2)[:80])
    assert "\n\n" in text and b.chars == len(text)
    assert lib.books(where="title = 'Road Notes'")[0].year is None  # "18uu": an unknown year stays unknown
