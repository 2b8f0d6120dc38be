"""The library: books cleaned and tokenized once (catalog, token store, tokenizer), and the ingest that builds it.

Read side: :class:`Library` and :class:`Book` (see docs/internals.md). Write side: :func:`ingest`.
"""

from __future__ import annotations

from bookmix.library.book import Book
from bookmix.library.build import IngestReport, ingest
from bookmix.library.library import Library

__all__ = ["Book", "IngestReport", "Library", "ingest"]
