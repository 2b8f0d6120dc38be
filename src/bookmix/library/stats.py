"""Summary figures of a library: what `bookmix library stats` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bookmix.library.library import Library


def library_stats(lib: Library) -> dict[str, Any]:
    con = lib.con
    books, tokens, chars = con.execute("SELECT COUNT(*), COALESCE(SUM(tokens), 0), COALESCE(SUM(chars), 0) FROM books").fetchone()
    holdout_books, holdout_tokens = con.execute(
        "SELECT COUNT(*), COALESCE(SUM(tokens), 0) FROM books WHERE split = 'holdout'"
    ).fetchone()
    status = dict(con.execute("SELECT status, COUNT(*) FROM sources GROUP BY status").fetchall())
    langs = dict(con.execute("SELECT lang, COUNT(*) FROM books GROUP BY lang ORDER BY COUNT(*) DESC").fetchall())
    return {
        "path": str(lib.path),
        "books": int(books),
        "tokens": int(tokens),
        "chars": int(chars),
        "rejected": int(status.get("rejected", 0)),
        "duplicates": int(status.get("duplicate", 0)),
        "holdout_books": int(holdout_books),
        "holdout_tokens": int(holdout_tokens),
        "vocab_size": lib.vocab_size,
        "eob_id": lib.eob_id,
        "token_dtype": lib.dtype.name,
        "shards": lib.n_shards(),
        "langs": langs,
    }
