"""Where built items come from: the library's held-out books, read once per task."""

from __future__ import annotations

from bookmix.errors import BookmixError


def heldout_books(lib, where: str | None = None) -> list:
    """Held-out books (catalog order), optionally filtered by a SQL expression; an error when there are none.

    Only held-out books: an item built from a book some recipe trains on would reward memorising that book.
    """
    books = lib.books(where=where, split="holdout")
    if not books:
        extra = f" matching {where!r}" if where else ""
        raise BookmixError(
            f"{lib.path}: no held-out books{extra}; ingest with --holdout FRACTION so evals have unseen text"
        )
    return books
