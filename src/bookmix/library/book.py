"""The Book record: one document of the library, the unit every later stage selects, orders and thins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Features computed at ingest, stored as REAL columns of the catalog (later stages order and design by them).
FEATURES = ("mean_word_len", "ttr", "readability", "entropy", "difficulty")


@dataclass(frozen=True)
class Book:
    """One cleaned, tokenized book as the catalog knows it.

    ``id`` is the first 16 hex characters of the sha256 of the cleaned text, so the same text gets the same id on any
    machine and in any re-ingest. Its tokens are ``tokens`` ids starting at ``offset`` in shard ``shard``.
    """

    id: str
    title: str
    author: str
    lang: str
    year: int | None
    subjects: list[str]
    source: str
    sha256: str
    chars: int
    tokens: int
    shard: int
    offset: int
    split: str  # 'train' | 'holdout'
    cluster: int | None = None
    features: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
