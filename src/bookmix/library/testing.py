"""Helpers for other rooms' tests: a real library (trained BPE, real store and catalog) from a few strings.

    lib = make_library(tmp_path, {"a": "Once upon a time ..." * 100, "b": ...}, holdout=0.2)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bookmix.library.build import ingest
from bookmix.library.library import Library


def make_library(
    tmp_path: str | Path,
    texts: dict[str, str] | list[str],
    vocab_size: int = 512,
    holdout: float = 0.0,
    seed: int = 0,
    **meta: Any,
) -> Library:
    """Write ``texts`` as ``.txt`` files under ``tmp_path/books`` and ingest them into ``tmp_path/library``.

    ``texts`` maps a name (used as the file name and the title) to the text, or is a list (named book000, ...).
    Extra keyword arguments become per-book metadata: a scalar applies to every book, a list/tuple gives one value
    per book (e.g. ``lang=["en", "ru"]``, ``genre=[...]``); ``title/author/year/lang/subjects`` land in the catalog
    columns, anything else in ``Book.extra``. Texts shorter than 1000 chars are accepted (min length is 1 char).
    """
    root = Path(tmp_path)
    named = texts if isinstance(texts, dict) else {f"book{i:03d}": t for i, t in enumerate(texts)}
    books_dir = root / "books"
    books_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (name, text) in enumerate(named.items()):
        file = f"{name}.txt"
        (books_dir / file).write_text(text, encoding="utf-8")
        row: dict[str, Any] = {"file": file, "title": name}
        for key, value in meta.items():
            row[key] = value[i] if isinstance(value, list | tuple) else value
        rows.append(row)
    sidecar = books_dir / "metadata.jsonl"
    sidecar.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    ingest(
        [books_dir],
        root / "library",
        tokenizer=f"train:{vocab_size}",
        holdout=holdout,
        seed=seed,
        workers=1,
        metadata=[sidecar],
        min_chars=1,
    )
    return Library.open(root / "library")
