"""Library.table's bulk reads and column cache (columns.py): same answers as row-by-row reads, never stale."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.library import Library, catalog, columns
from bookmix.library.book import FEATURES


def _rows(start: int, n: int, rng: np.random.Generator) -> list[tuple]:
    langs = np.array(["en", "ru", "de"])[rng.integers(0, 3, n)]
    out = []
    for k, i in enumerate(range(start, start + n)):
        year = None if i % 7 == 0 else int(1700 + i % 250)
        feats = [None if (i + j) % 11 == 0 else round(float(rng.random() * 10), 4) for j in range(len(FEATURES))]
        out.append(
            (f"{i:016x}", f"Title {i} é", f"Author {i % 13}", str(langs[k]), year, '["Sea"]', f"src/{i}.txt",
             f"{i:064x}", 40 * i + 1, 10 * i + 1, i // 500, i * 11, "holdout" if i % 10 == 0 else "train", None,
             *feats, '{"genre": "sea"}' if i % 2 else "{}")
        )
    return out


@pytest.fixture
def lib(tmp_path) -> Library:
    con = catalog.connect(tmp_path / catalog.CATALOG_NAME, create=True)
    catalog.set_meta(con, vocab_size=512, eob_id=0)
    with con:  # one transaction, not 3000 fsyncs
        con.execute("BEGIN")
        con.executemany(catalog.INSERT_BOOK, _rows(0, 3000, np.random.default_rng(0)))
    con.close()
    return Library.open(tmp_path)


def _slow(lib: Library, cols, where=None, split=None) -> dict[str, np.ndarray]:
    """The reference: one row query, converted value by value."""
    clause, args = catalog.filter_sql(where, split)
    quoted = ", ".join(f'"{c}"' for c in cols)
    rows = lib.con.execute(f"SELECT {quoted} FROM books{clause} ORDER BY rowid", args).fetchall()
    return {c: columns.convert(c, [r[j] for r in rows]) for j, c in enumerate(cols)}


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for c in a:
        assert a[c].dtype == b[c].dtype and a[c].shape == b[c].shape, c
        if a[c].dtype == np.float64:
            np.testing.assert_array_equal(a[c], b[c])  # NaN == NaN here, and exact equality otherwise
        else:
            assert a[c].tolist() == b[c].tolist(), c


def test_bulk_and_cached_reads_equal_row_reads(lib: Library) -> None:
    cols = lib.columns()
    first = lib.table()
    _same(first, _slow(lib, cols))
    assert np.isnan(first["year"]).sum() == len(range(0, 3000, 7)) and (first["cluster"] == -1).all()
    cached = list((lib.path / columns.CACHE_DIR).iterdir())
    assert len(cached) == 1 and (cached[0] / "tokens.npy").exists() and (cached[0] / "lang.codes.npy").exists()
    _same(lib.table(), first)  # now from the files


@pytest.mark.parametrize("direct_rows", [0, 10**9])  # through the cache + rowids, and straight from SQLite
def test_filters_match_row_reads(lib: Library, monkeypatch, direct_rows: int) -> None:
    monkeypatch.setattr(columns, "DIRECT_ROWS", direct_rows)
    cols = ["id", "tokens", "year", "lang", "entropy", "cluster"]
    for where, split in [("lang = 'ru' AND year > 1800", None), (None, "holdout"), ("tokens % 3 = 0", "train"), ("id = 'x'", None)]:
        _same(lib.table(cols, where=where, split=split), _slow(lib, cols, where, split))


def test_cache_follows_every_change(lib: Library) -> None:
    before = lib.table(["id", "cluster", "title", "tokens"])
    ids = before["id"][:5].tolist()
    (folder,) = (lib.path / columns.CACHE_DIR).iterdir()
    lib.set_column("cluster", ids, [4, 3, 2, 1, 0])
    assert lib.table(["cluster"])["cluster"][:6].tolist() == [4, 3, 2, 1, 0, -1]
    assert (folder / "tokens.npy").exists() and len(list(folder.glob("cluster.*.npy"))) == 1  # only labels re-read
    lib.con.execute("UPDATE books SET title = 'Renamed' WHERE id = ?", (ids[1],))  # a write outside bookmix
    assert lib.table(["title"])["title"][1] == "Renamed"
    with lib.con:
        lib.con.execute("BEGIN")
        lib.con.executemany(catalog.INSERT_BOOK, _rows(3000, 10, np.random.default_rng(1)))  # appended books
    after = lib.table(["id", "tokens"])
    assert len(after["id"]) == 3010 and after["tokens"][-1] == 10 * 3009 + 1
    lib.con.execute("DELETE FROM books WHERE id = ?", (ids[0],))
    assert lib.table(["id"])["id"][0] == ids[1]
    lib.set_column("score", ids[1:3], [0.5, 1.5])  # a new column: object array, values as stored
    assert lib.table(["score"])["score"][:3].tolist() == [0.5, 1.5, None]
    assert len(list((lib.path / columns.CACHE_DIR).iterdir())) == 1  # older generations are removed


def test_exact_reals_and_awkward_text(lib: Library) -> None:
    ids = lib.table(["id"])["id"][:4].tolist()
    awkward = [0.1 + 0.2, 1 / 3, 5e-324, -1.2345678901234567e300]
    lib.set_column("entropy", ids, awkward)
    lib.con.execute("UPDATE books SET title = ? WHERE id = ?", ("a\x1fb", ids[0]))  # holds the separator
    for _ in range(2):  # bulk read, then cached
        t = lib.table(["entropy", "title"])
        assert t["entropy"][:4].tolist() == awkward and t["title"][0] == "a\x1fb"
        assert t["title"][1] == "Title 1 é"


def test_catalog_made_before_the_counter_gets_it(lib: Library) -> None:
    con = lib.con
    con.executescript("DROP TRIGGER books_gen_update; DROP TRIGGER books_gen_delete; DROP TABLE generation;")
    assert catalog.generation(con) is None
    t = lib.table(["id", "tokens"])
    assert len(t["id"]) == 3000 and catalog.generation(con) is not None
    con.execute("UPDATE books SET tokens = 7 WHERE rowid = 1")
    assert lib.table(["tokens"])["tokens"][0] == 7


def test_empty_catalog_gives_empty_typed_columns(tmp_path) -> None:
    con = catalog.connect(tmp_path / catalog.CATALOG_NAME, create=True)
    catalog.set_meta(con, vocab_size=512, eob_id=0)
    con.close()
    t = Library.open(tmp_path).table(["id", "tokens", "year", "entropy", "cluster"])
    assert all(len(v) == 0 for v in t.values())
    assert (t["tokens"].dtype, t["year"].dtype, t["entropy"].dtype, t["cluster"].dtype) == (np.int64, np.float64, np.float64, np.int64)
