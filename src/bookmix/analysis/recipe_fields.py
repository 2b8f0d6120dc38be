"""Reading the analysis factors out of a recipe dict (``Recipe.to_dict()``), tolerant of how each field is spelled.

The analysis never needs the whole Recipe, only: which books, and a handful of scalar settings (order strategy,
sparsity keep / pattern / grain, epochs). Everything else in the dict is carried along untouched, so a proposal can
be built by copying an observed recipe and swapping its books.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Fields that do not describe *how* the books are read: dropped when two recipes are compared by their settings.
_NOT_SETTINGS = ("books", "id", "seed", "meta")


def recipe_books(recipe: Mapping[str, Any]) -> list[str]:
    """Distinct book ids of a recipe (``books``, or the union of its ``phases``' books), first appearance first."""
    books = recipe.get("books")
    if not books and recipe.get("phases"):
        books = [b for ph in recipe["phases"] for b in (ph.get("books") or [])]
    if books is None:
        raise ValueError("has no 'books'")
    out: list[str] = []
    for b in books:
        if isinstance(b, str):
            out.append(b)
        elif isinstance(b, Mapping) and ("id" in b or "book" in b):
            out.append(str(b.get("id", b.get("book"))))
        else:
            raise ValueError(f"books: entries must be book ids, got {b!r}")
    return list(dict.fromkeys(out))


def _flat(value: Any) -> str:
    """A stable short label for a setting that may be a string, a number or a small dict."""
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        parts = [str(v) for k, v in sorted(value.items()) if v is not None and k not in ("seed",)]
        return ":".join(parts) if parts else "none"
    if isinstance(value, list | tuple):
        return ":".join(str(v) for v in value)
    return str(value)


def recipe_settings(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar settings the factor analysis uses (see :class:`bookmix.recipes.Recipe`).

    ``order`` (a curriculum of phases reads ``phases:<order>><order>``), ``grain``, ``sparsity`` keep / pattern /
    chunk_tokens, ``epochs``. Missing settings get Recipe's defaults, so recipes from different designs line up.
    A full read (keep 1) has no pattern and no chunking, whatever the fields say.
    """
    order = recipe.get("order") or "random"
    phases = recipe.get("phases")
    if phases:
        order = "phases:" + ">".join(str(ph.get("order") or order) for ph in phases)
    sp = recipe.get("sparsity")
    if isinstance(sp, Mapping):
        keep = float(sp.get("keep", 1.0))
        pattern = str(sp.get("pattern", "stride"))
        chunk = float(sp.get("chunk_tokens", 1024))
    elif sp is None:
        keep, pattern, chunk = 1.0, "stride", 1024.0
    else:
        keep, pattern, chunk = float(sp), "stride", 1024.0
    full = keep >= 1.0
    return {
        "order": _flat(order),
        "grain": _flat(recipe.get("grain") or "windows"),
        "sparsity_keep": keep,
        "sparsity_pattern": "full" if full else pattern,
        "sparsity_chunk": 0.0 if full else chunk,
        "epochs": float(recipe.get("epochs", 1) or 1),
    }


def settings_of(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe without its books (and id/name/seed): what stays when a proposal swaps the books."""
    return {k: v for k, v in recipe.items() if k not in _NOT_SETTINGS}


def canonical_key(obj: Any) -> str:
    """A short content hash of a JSON-able value (sorted keys), for grouping replicates of one recipe."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recipe_key(recipe: Mapping[str, Any]) -> str:
    """The recipe's own id when it has one, else a hash of its content: trials sharing it are replicates."""
    rid = recipe.get("id")
    return str(rid) if rid else canonical_key({k: v for k, v in recipe.items() if k != "id"})
