"""The ingest end to end: formats, sidecars, dedup, holdout, rejections, the CLI, and resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bookmix.cli import main
from bookmix.errors import BookmixError
from bookmix.library import Library, ingest

from .fixtures import fb2_bytes, gutenberg, gz_bytes, write_epub
from .helpers import RU_WORDS, prose


def make_sources(root: Path) -> Path:
    src = root / "src"
    (src / "nested").mkdir(parents=True)
    for i in range(4):
        (src / f"en{i}.txt").write_text(prose(i), encoding="utf-8")
    (src / "nested" / "pg.txt.gz").write_bytes(gz_bytes(gutenberg(prose(10), title="Harbour Tales").encode()))
    (src / "nested" / "copy_of_en0.txt").write_text(prose(0), encoding="utf-8")  # same text, other name
    write_epub(src / "tale.epub", [prose(11, 6), prose(12, 6)])
    (src / "ru.fb2").write_bytes(fb2_bytes(prose(13, 20, RU_WORDS).split("\n\n"), encoding="windows-1251"))
    (src / "empty.txt").write_bytes(b"")
    (src / "short.txt").write_text("Too short to be a book.", encoding="utf-8")
    (src / "bad.txt.gz").write_bytes(gz_bytes(prose(14).encode())[:200])
    (src / "nested" / ".hidden.txt").write_text(prose(15), encoding="utf-8")  # hidden files are not sources
    (src / "catalog.csv").write_text(
        "file,title,author,year,lang,subjects,genre\n"
        "en1.txt,The Sea Wall,A. Writer,1888,en,Sea|Ships,adventure\n"
        "nested/pg.txt.gz,,,1850,,,\n",
        encoding="utf-8",
    )
    return src


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("ingest")
    src = make_sources(root)
    report = ingest([src], root / "lib", tokenizer="train:700", metadata=[src / "catalog.csv"], workers=1, holdout=0.0)
    return src, root / "lib", report


def test_report_counts(built) -> None:
    _, _, report = built
    assert report.added == 7 and report.duplicates == 1 and report.rejected == 3 and report.skipped == 0
    reasons = {Path(r["source"]).name: r["reason"] for r in report.rejections}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["short.txt"].startswith("too short")
    assert "gzip" in reasons["bad.txt.gz"]


def test_metadata_from_sidecar_header_and_file(built) -> None:
    _, path, _ = built
    lib = Library.open(path)
    by_title = {b.title: b for b in lib.books()}
    sea = by_title["The Sea Wall"]
    assert (sea.author, sea.year, sea.lang, sea.subjects, sea.extra) == ("A. Writer", 1888, "en", ["Sea", "Ships"], {"genre": "adventure"})
    pg = by_title["Harbour Tales"]  # title and author from the Gutenberg header, year from the sidecar
    assert (pg.author, pg.year, pg.lang, pg.extra["release_date"]) == ("Jane Roe", 1850, "en", "March 3, 2004")
    assert "GUTENBERG" not in lib.decode(lib.tokens(pg.id))
    ru = by_title["Повесть"]
    assert ru.lang == "ru" and ru.author == "Иван Тургенев" and "море" not in ru.title
    assert by_title["A Test Epub"].subjects == ["Sea stories"]
    assert by_title["en0"].lang == "en"  # detected


def test_rejected_jsonl_and_stats(built) -> None:
    _, path, _ = built
    rows = [json.loads(x) for x in (path / "rejected.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["reason"] for r in rows)
    stats = Library.open(path).stats()
    assert (stats["books"], stats["rejected"], stats["duplicates"], stats["holdout_books"]) == (7, 3, 1, 0)
    assert stats["vocab_size"] <= 700


def test_rerun_adds_nothing_and_new_copy_is_deduplicated(built, tmp_path) -> None:
    src, path, _ = built
    before = (path / "tokens" / "00000.bin").read_bytes()
    again = ingest([src], path, metadata=[src / "catalog.csv"], workers=1)
    assert (again.added, again.skipped, again.rejected) == (0, 11, 0)
    (tmp_path / "renamed.txt").write_text(prose(3), encoding="utf-8")
    dup = ingest([tmp_path / "renamed.txt"], path, workers=1)
    assert (dup.added, dup.duplicates) == (0, 1)
    assert (path / "tokens" / "00000.bin").read_bytes() == before
    with pytest.raises(BookmixError, match="holdout"):
        ingest([src], path, holdout=0.5, workers=1)
    with pytest.raises(BookmixError, match="vocabulary"):
        ingest([src], path, tokenizer="train:900", workers=1)


def test_holdout_fraction_is_seeded_and_holdout_file_marks_books(tmp_path) -> None:
    src = tmp_path / "s"
    src.mkdir()
    for i in range(30):
        (src / f"b{i:02d}.txt").write_text(prose(200 + i, 4), encoding="utf-8")
    a = ingest([src], tmp_path / "a", tokenizer="train:400", holdout=0.3, seed=7, workers=1, min_chars=100)
    b = ingest([src], tmp_path / "b", tokenizer="train:400", holdout=0.3, seed=7, workers=2, min_chars=100)
    ha = {x.id for x in Library.open(tmp_path / "a").books(split="holdout")}
    hb = {x.id for x in Library.open(tmp_path / "b").books(split="holdout")}
    assert a.added == b.added == 30 and ha == hb and 3 <= len(ha) <= 18
    (tmp_path / "hold.txt").write_text("b05.txt  # by file name\nb06\n", encoding="utf-8")
    ingest([src], tmp_path / "c", tokenizer="train:400", holdout_books=tmp_path / "hold.txt", workers=1, min_chars=100)
    lib = Library.open(tmp_path / "c")
    assert {x.title for x in lib.books(split="holdout")} == {"b05", "b06"}
    assert (tmp_path / "c" / "column_cache").is_dir()  # the ingest filled Library.table's cache
    t = lib.table(["title", "split"], split="holdout")
    assert sorted(t["title"]) == ["b05", "b06"]
    (tmp_path / "hold.txt").write_text("b07.txt\n", encoding="utf-8")  # a later run marks one more book
    ingest([src], tmp_path / "c", holdout_books=tmp_path / "hold.txt", workers=1, min_chars=100)
    assert sorted(lib.table(["title"], split="holdout")["title"]) == ["b05", "b06", "b07"]


def test_parallel_ingest_matches_serial(tmp_path) -> None:
    src = make_sources(tmp_path)
    tok = tmp_path / "tok"
    ingest([src / "en0.txt"], tok, tokenizer="train:500", workers=1)
    one = ingest([src], tmp_path / "one", tokenizer=str(tok / "tokenizer.json"), workers=1)
    two = ingest([src], tmp_path / "two", tokenizer=str(tok / "tokenizer.json"), workers=2)
    assert (one.added, one.tokens, one.rejected) == (two.added, two.tokens, two.rejected)
    l1, l2 = Library.open(tmp_path / "one"), Library.open(tmp_path / "two")
    for b in l1.books():
        np.testing.assert_array_equal(l1.tokens(b.id), l2.tokens(b.id))
        assert l2.book(b.id).features == b.features


def test_chunked_encoding_equals_whole_encoding(tmp_path) -> None:
    from bookmix.library.process import encode, split_chunks

    lib_dir = tmp_path / "l"
    (tmp_path / "a.txt").write_text(prose(1, 80), encoding="utf-8")
    ingest([tmp_path / "a.txt"], lib_dir, tokenizer="train:600", workers=1)
    lib = Library.open(lib_dir)
    text = "  Indented line\n\n\n  \n" + prose(2, 400) + "\n \nA\n\n  spaced  \n" + prose(3, 300, RU_WORDS)
    assert len(split_chunks(text, 2000)) > 5
    whole = np.asarray(lib.tokenizer.encode(text, add_special_tokens=False).ids)
    np.testing.assert_array_equal(encode(lib.tokenizer, text, lib.dtype), whole)


def test_cli_ingest_stats_list_json(tmp_path, capsys) -> None:
    src = make_sources(tmp_path)
    lib = tmp_path / "lib"
    code = main(["library", "ingest", str(src), "--library", str(lib), "--tokenizer", "train:500", "--workers", "1",
                 "--holdout", "0.2", "--metadata", str(src / "catalog.csv"), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    stats = json.loads(out)
    assert {"books", "tokens", "rejected", "holdout_books", "vocab_size"} <= set(stats)
    assert stats["books"] == 7 and stats["rejected"] == 3 and stats["run"]["added"] == 7
    assert main(["library", "stats", "--library", str(lib), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["books"] == 7
    assert main(["library", "list", "--library", str(lib), "--where", "year BETWEEN 1860 AND 1890", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["count"] == 1 and listed["books"][0]["title"] == "The Sea Wall"
    assert main(["library", "list", "--library", str(lib), "--where", "bogus ==", "--json"]) == 2
    assert capsys.readouterr().out == ""


def test_nothing_ingested_is_an_error(tmp_path, capsys) -> None:
    (tmp_path / "e.txt").write_bytes(b"")
    (tmp_path / "s.txt").write_text("short", encoding="utf-8")
    code = main(["library", "ingest", str(tmp_path / "e.txt"), str(tmp_path / "s.txt"), "--library", str(tmp_path / "l"),
                 "--tokenizer", "train:400", "--workers", "1"])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert code == 2 and "nothing ingested" in err and "e.txt" in err
    assert main(["library", "ingest", str(tmp_path / "missing"), "--library", str(tmp_path / "l")]) == 2
    assert "no such file" in " ".join(capsys.readouterr().err.split())


_KILLABLE = """
import sys
from bookmix.library import ingest
ingest([sys.argv[1]], sys.argv[2], tokenizer=sys.argv[3], workers=int(sys.argv[4]), commit_seconds=0.0, min_chars=100)
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_then_rerun_finishes_without_duplicates(tmp_path, workers) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(60):
        (src / f"b{i:02d}.txt").write_text(prose(300 + i, 40), encoding="utf-8")
    (src / "b_dup.txt").write_text(prose(300, 40), encoding="utf-8")
    ref = tmp_path / "ref"
    ingest([src / "b00.txt"], tmp_path / "tok", tokenizer="train:500", workers=1, min_chars=100)
    tok = str(tmp_path / "tok" / "tokenizer.json")
    ingest([src], ref, tokenizer=tok, workers=1, min_chars=100)

    lib = tmp_path / "lib"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(src), str(lib), tok, str(workers)], env=env)
    deadline = time.monotonic() + 180  # generous: worker start-up on a loaded 2-core machine can take long
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(lib / "catalog.sqlite") as con:
                if con.execute("SELECT COUNT(*) FROM books").fetchone()[0] >= 5:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = Library.open(lib)
    assert 0 < killed.count() < 60, f"the kill should land mid-ingest (found {killed.count()} books)"
    # A torn append: bytes past the last committed book, as a kill between write and commit leaves them.
    with open(lib / "tokens" / "00000.bin", "ab") as fh:
        fh.write(b"\x07\x00" * 333)

    report = ingest([src], lib, tokenizer=tok, workers=workers, min_chars=100)
    assert report.skipped > 0
    a, b = Library.open(ref), Library.open(lib)
    assert sorted(x.id for x in a.books()) == sorted(x.id for x in b.books())
    assert b.count() == 60 and b.stats()["duplicates"] == 1
    for x in a.books():
        np.testing.assert_array_equal(a.tokens(x.id), b.tokens(x.id))
    ends = sorted(x.offset + x.tokens for x in b.books())
    assert len(b.shard(0)) == ends[-1] + 1 and (b.shard(0)[ends] == b.eob_id).all()


def test_shards_roll_over(tmp_path) -> None:
    src = tmp_path / "s"
    src.mkdir()
    for i in range(6):
        (src / f"b{i}.txt").write_text(prose(400 + i, 30), encoding="utf-8")
    ingest([src], tmp_path / "l", tokenizer="train:400", workers=1, shard_bytes=8000)
    lib = Library.open(tmp_path / "l")
    assert lib.n_shards() > 1
    for b in lib.books():
        assert lib.decode(lib.tokens(b.id)).startswith(prose(400 + int(b.title[1:]), 30)[:50])
        assert lib.shard(b.shard)[b.offset + b.tokens] == lib.eob_id


def test_same_train_spec_reruns_when_the_corpus_trained_fewer_tokens_than_asked(tmp_path) -> None:
    src = make_sources(tmp_path)
    first = ingest([src / "en0.txt"], tmp_path / "lib", tokenizer="train:60000", workers=1)
    lib = Library.open(tmp_path / "lib")
    assert lib.vocab_size < 60000  # a tiny corpus cannot fill the vocabulary
    again = ingest([src], tmp_path / "lib", tokenizer="train:60000", workers=1)  # the same command, more sources
    assert again.added >= 1 and first.added == 1
    with pytest.raises(BookmixError, match="vocabulary"):
        ingest([src], tmp_path / "lib", tokenizer="train:1000", workers=1)
