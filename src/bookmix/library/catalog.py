"""The catalog: one SQLite file (WAL) with a row per book, a row per ingested source, and the library's settings.

Only the ingest driver writes books (one writer per SQLite file); readers may run at the same time thanks to WAL.
``where`` expressions are plain SQL over the ``books`` columns, e.g. ``lang = 'ru' AND tokens > 100000``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bookmix.errors import BookmixError
from bookmix.library.book import FEATURES, Book

CATALOG_NAME = "catalog.sqlite"

# Core columns in table order. Nullable ints (year, cluster) stay NULL when unknown rather than a made-up value.
CORE_COLUMNS: dict[str, str] = {
    "id": "TEXT NOT NULL UNIQUE",
    "title": "TEXT NOT NULL DEFAULT ''",
    "author": "TEXT NOT NULL DEFAULT ''",
    "lang": "TEXT NOT NULL DEFAULT ''",
    "year": "INTEGER",
    "subjects": "TEXT NOT NULL DEFAULT '[]'",  # JSON list
    "source": "TEXT NOT NULL DEFAULT ''",
    "sha256": "TEXT NOT NULL",
    "chars": "INTEGER NOT NULL",
    "tokens": "INTEGER NOT NULL",
    "shard": "INTEGER NOT NULL",
    "offset": "INTEGER NOT NULL",
    "split": "TEXT NOT NULL DEFAULT 'train'",
    "cluster": "INTEGER",
    **{name: "REAL" for name in FEATURES},
    "extra": "TEXT NOT NULL DEFAULT '{}'",  # JSON object: sidecar columns kept as they came
}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS books (
  rowid INTEGER PRIMARY KEY,
  {", ".join(f'"{c}" {t}' for c, t in CORE_COLUMNS.items())}
);
CREATE INDEX IF NOT EXISTS books_split ON books(split);
CREATE INDEX IF NOT EXISTS books_lang ON books(lang);
CREATE INDEX IF NOT EXISTS books_year ON books(year);
CREATE INDEX IF NOT EXISTS books_tokens ON books(tokens);
CREATE INDEX IF NOT EXISTS books_shard ON books(shard, offset);
CREATE TABLE IF NOT EXISTS sources (
  key TEXT PRIMARY KEY,        -- a file path or hf:NAME:SPLIT#ID: what was read
  status TEXT NOT NULL,        -- 'book' | 'duplicate' | 'rejected'
  book_id TEXT,
  reason TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Change counters for Library.table's column cache (columns.py): 'books' counts updates of any core column but
# cluster, and deletes; 'cluster' counts cluster updates, so relabelling books (recipes' clustering) leaves every
# other cached column valid. Inserts are told by the highest rowid instead: an AFTER INSERT trigger would triple the
# cost of inserting a row (measured), while an AFTER UPDATE one adds ~2 µs to a row update.
_GENERATION = f"""
CREATE TABLE IF NOT EXISTS generation (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT OR IGNORE INTO generation(name, n) VALUES ('books', 0), ('cluster', 0);
CREATE TRIGGER IF NOT EXISTS books_gen_update AFTER UPDATE OF {", ".join(f'"{c}"' for c in CORE_COLUMNS if c != "cluster")}
  ON books BEGIN UPDATE generation SET n = n + 1 WHERE name = 'books'; END;
CREATE TRIGGER IF NOT EXISTS books_gen_cluster AFTER UPDATE OF cluster
  ON books BEGIN UPDATE generation SET n = n + 1 WHERE name = 'cluster'; END;
CREATE TRIGGER IF NOT EXISTS books_gen_delete AFTER DELETE
  ON books BEGIN UPDATE generation SET n = n + 1 WHERE name = 'books'; END;
"""
_GENERATION_TRIGGERS = ("books_gen_update", "books_gen_cluster", "books_gen_delete")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def connect(path: Path, create: bool = False) -> sqlite3.Connection:
    """Open (or create) the catalog with WAL journaling and NORMAL sync (WAL keeps commits atomic either way)."""
    if not create and not path.exists():
        raise BookmixError(f"{path}: no catalog here (not a bookmix library; run `bookmix library ingest` first)")
    try:
        con = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        if create:
            con.executescript(_SCHEMA)
            ensure_generation(con)
    except sqlite3.DatabaseError as exc:
        raise BookmixError(f"{path}: not a readable SQLite catalog ({exc})") from exc
    return con


def ensure_generation(con: sqlite3.Connection) -> bool:
    """Give a catalog made before the change counters existed its counters and triggers (one small write).

    False when that cannot be done (a read-only catalog, or a writer holding the lock): callers then skip caching.
    """
    have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    if have.issuperset(_GENERATION_TRIGGERS):
        return True
    if con.in_transaction:
        return False
    try:
        con.execute("PRAGMA busy_timeout = 200")  # never wait on an ingest for a cache
        drop = "".join(f"DROP TRIGGER IF EXISTS {t};" for t in (*_GENERATION_TRIGGERS, "books_gen_insert"))
        con.executescript(f"BEGIN IMMEDIATE; {drop} DROP TABLE IF EXISTS generation; {_GENERATION} COMMIT;")
        return True
    except sqlite3.Error:
        if con.in_transaction:
            con.execute("ROLLBACK")
        return False
    finally:
        con.execute("PRAGMA busy_timeout = 60000")


def generation(con: sqlite3.Connection) -> dict[str, str] | None:
    """Names for the current content of ``books`` (None without counters): ``books`` for every core column but
    cluster (update/delete counter + highest rowid: SQLite gives an appended row the highest rowid + 1) and
    ``cluster`` for that column (its own counter as well)."""
    try:
        counts = dict(con.execute("SELECT name, n FROM generation").fetchall())
        top = con.execute("SELECT MAX(rowid) FROM books").fetchone()[0] or 0
        base = f"g{counts['books']}-r{top}"
        return {"books": base, "cluster": f"{base}-c{counts['cluster']}"}
    except (sqlite3.OperationalError, KeyError):
        return None


def analyze(con: sqlite3.Connection) -> None:
    """Refresh the planner's statistics, so a filter uses its most selective index (``year BETWEEN ...`` rather than
    ``lang = 'ru'``): a full ANALYZE costs ~0.4 s CPU at a million books, once per ingest (sampled statistics from
    ``analysis_limit`` were measured to mislead the planner here)."""
    con.execute("ANALYZE")


def get_meta(con: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}


def set_meta(con: sqlite3.Connection, **values: Any) -> None:
    con.executemany(
        "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(k, json.dumps(v)) for k, v in values.items()],
    )


def columns(con: sqlite3.Connection) -> list[str]:
    """Every column of ``books`` (core ones and any added by :func:`set_column`), rowid excluded."""
    return [r[1] for r in con.execute("PRAGMA table_info(books)") if r[1] != "rowid"]


def filter_sql(where: str | None, split: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause for a user expression and an optional split; the expression is parenthesised as a whole."""
    parts, args = [], []
    if split is not None:
        if split not in ("train", "holdout"):
            raise BookmixError(f"split: must be 'train' or 'holdout', got {split!r}")
        parts.append("split = ?")
        args.append(split)
    if where:
        parts.append(f"({where})")
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


def query(con: sqlite3.Connection, sql: str, args: Sequence[Any] = (), where: str | None = None) -> list[tuple]:
    """Run a read query; a bad ``where`` expression becomes a BookmixError that quotes it."""
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.Error as exc:
        what = f"--where {where!r}" if where else "catalog query"
        raise BookmixError(f"{what}: {exc}") from exc


def row_to_book(names: Sequence[str], row: Sequence[Any]) -> Book:
    """Build a Book from a ``SELECT *``-style row; columns beyond the core ones land in ``extra``."""
    d = dict(zip(names, row, strict=True))
    extra = json.loads(d.pop("extra") or "{}")
    features = {f: d.pop(f) for f in FEATURES}
    core = {c: d.pop(c) for c in CORE_COLUMNS if c in d}
    d.pop("rowid", None)
    extra.update(d)  # columns written later by set_column (e.g. labels from a clustering)
    return Book(
        id=core["id"],
        title=core["title"],
        author=core["author"],
        lang=core["lang"],
        year=core["year"],
        subjects=json.loads(core["subjects"] or "[]"),
        source=core["source"],
        sha256=core["sha256"],
        chars=core["chars"],
        tokens=core["tokens"],
        shard=core["shard"],
        offset=core["offset"],
        split=core["split"],
        cluster=core["cluster"],
        features={k: v for k, v in features.items() if v is not None},
        extra=extra,
    )


def book_row(book: Book) -> tuple:
    """The values of :data:`CORE_COLUMNS` for one Book, in order."""
    return (
        book.id,
        book.title,
        book.author,
        book.lang,
        book.year,
        json.dumps(book.subjects, ensure_ascii=False),
        book.source,
        book.sha256,
        book.chars,
        book.tokens,
        book.shard,
        book.offset,
        book.split,
        book.cluster,
        *(book.features.get(f) for f in FEATURES),
        json.dumps(book.extra, ensure_ascii=False, default=str),
    )


_QUOTED = ", ".join(f'"{c}"' for c in CORE_COLUMNS)
INSERT_BOOK = f"INSERT INTO books({_QUOTED}) VALUES({', '.join('?' * len(CORE_COLUMNS))})"


def set_column(con: sqlite3.Connection, name: str, book_ids: Iterable[str], values: Iterable[Any]) -> int:
    """Write one column for the given books, adding the column if it is new; returns the number of rows updated."""
    if not _IDENT.match(name):
        raise BookmixError(f"column name {name!r}: must be a plain identifier (letters, digits, underscore)")
    protected = set(CORE_COLUMNS) - {"cluster", *FEATURES}
    if name in protected:
        raise BookmixError(f"column {name!r}: part of the catalog's identity and location; it cannot be overwritten")
    pairs = [(_plain(v), str(i)) for i, v in zip(book_ids, values, strict=True)]
    con.execute("BEGIN IMMEDIATE")
    try:
        if name not in columns(con):
            kinds = {type(v) for v, _ in pairs if v is not None}
            sql_type = "INTEGER" if kinds <= {int, bool} else "REAL" if kinds <= {int, float, bool} else "TEXT"
            con.execute(f'ALTER TABLE books ADD COLUMN "{name}" {sql_type}')
        cur = con.executemany(f'UPDATE books SET "{name}" = ? WHERE id = ?', pairs)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return cur.rowcount


def ensure_column(con: sqlite3.Connection, name: str, sql_type: str) -> bool:
    """Add a nullable column of ``sql_type`` to ``books`` unless it is there; True when it was added."""
    if not _IDENT.match(name):
        raise BookmixError(f"column name {name!r}: must be a plain identifier (letters, digits, underscore)")
    if name in columns(con):
        return False
    con.execute(f'ALTER TABLE books ADD COLUMN "{name}" {sql_type}')
    return True


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars, so SQLite stores numbers as numbers."""
    return value.item() if hasattr(value, "item") else value
