"""Choosing the best N books: the top of a score expression over catalog columns, deterministic.

    select_top(lib, 1000, by="-q_bpb - 5 * q_ocr + 0.2 * q_lang", where="lang = 'en'")

``by`` is any SQL expression over the catalog's columns (the quality signals of ``score.py``, ``tokens``, ``year``,
features, sidecar columns), higher = better. Ties are broken by book id, so the same catalog gives the same books
whatever order it was ingested or scored in; books whose expression is NULL (not scored yet) are never chosen and
are counted in the result. Holdout books and near-duplicates marked by ``dedup`` are left out (the latter unless
``include_duplicates``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bookmix.errors import BookmixError
from bookmix.library import catalog

DUP_COLUMN = "dup_of"


@dataclass
class Selection:
    by: str
    where: str | None
    ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    candidates: int = 0  # books that matched where/split/duplicates
    unscored: int = 0  # of those, how many have a NULL ``by`` (left out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def select_top(
    lib, n: int, by: str, where: str | None = None, split: str | None = "train", include_duplicates: bool = False
) -> Selection:
    if n < 1:
        raise BookmixError(f"--top: must be ≥ 1, got {n}")
    if not by or not by.strip():
        raise BookmixError('--by: give a score expression over catalog columns, e.g. "-q_bpb - 5 * q_ocr"')
    parts = []
    if where:
        parts.append(f"({where})")
    if not include_duplicates and DUP_COLUMN in catalog.columns(lib.con):
        parts.append(f"{DUP_COLUMN} IS NULL")
    clause, args = catalog.filter_sql(" AND ".join(parts) or None, split)
    what = f"--by {by!r}" + (f" / --where {where!r}" if where else "")
    try:
        total, unscored = lib.con.execute(f"SELECT COUNT(*), SUM(({by}) IS NULL) FROM books{clause}", args).fetchone()
        rows = lib.con.execute(
            f"SELECT id, ({by}) AS s FROM books{clause}{' AND' if clause else ' WHERE'} ({by}) IS NOT NULL "
            "ORDER BY s DESC, id ASC LIMIT ?",
            [*args, int(n)],
        ).fetchall()
    except Exception as exc:  # sqlite3.Error: a bad expression or an unknown column
        raise BookmixError(f"{what}: {exc}") from exc
    out = Selection(by=by, where=where, candidates=int(total or 0), unscored=int(unscored or 0))
    for book_id, s in rows:
        if not isinstance(s, int | float):
            raise BookmixError(f"--by {by!r}: gives {type(s).__name__} values, not numbers (book {book_id})")
        out.ids.append(book_id)
        out.scores.append(float(s))
    return out
