"""Metadata sidecars: a CSV or JSONL file with one row per book file.

Columns: ``file`` (path relative to the sidecar), ``title``, ``author``, ``year``, ``lang``, ``subjects`` (``|``-
separated in CSV, a list in JSONL); every other column is kept as it came in the book's ``extra``. Several sidecars
may describe the same files (e.g. a catalog and a subject list); later ones fill in and override earlier ones.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from bookmix.errors import BookmixError
from bookmix.utils.io import json_object

CORE_FIELDS = ("title", "author", "year", "lang", "subjects")


def load_sidecars(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Resolved file path → metadata (core fields at top level, the rest under ``extra``)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for key, meta in _load(Path(path)).items():
            have = out.setdefault(key, {"extra": {}})
            have["extra"].update(meta.pop("extra"))
            have.update({k: v for k, v in meta.items() if v not in (None, "", [])})
    return out


def _load(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise BookmixError(f"--metadata {path}: no such file")
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise BookmixError(f"--metadata {path}: expected a .csv or .jsonl file")
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            if path.suffix.lower() == ".csv":
                reader = csv.DictReader(fh)
                if not reader.fieldnames or "file" not in reader.fieldnames:
                    raise BookmixError(f"{path}: CSV sidecar needs a 'file' column (has {reader.fieldnames})")
                rows = [(i + 2, dict(r)) for i, r in enumerate(reader)]
            else:
                for i, line in enumerate(fh, 1):
                    if line.strip():
                        rows.append((i, json_object(line, f"{path}:{i}")))
    except UnicodeDecodeError as exc:
        raise BookmixError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    base = path.parent
    out = {}
    for line, row in rows:
        file = row.pop("file", None)
        if not file:
            raise BookmixError(f"{path}:{line}: field 'file' is empty")
        out[os.path.realpath(base / str(file))] = _row_meta(row, f"{path}:{line}")
    return out


def _row_meta(row: dict[str, Any], where: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"extra": {}}
    for key, value in row.items():
        if key is None:  # a CSV row with more cells than headers
            continue
        if key not in CORE_FIELDS:
            if value not in (None, ""):
                meta["extra"][key] = value
            continue
        if value in (None, ""):
            continue
        if key == "year":
            try:
                meta["year"] = int(float(value))
            except (TypeError, ValueError):
                raise BookmixError(f"{where}: field 'year' must be an integer, got {value!r}") from None
        elif key == "subjects":
            items = value if isinstance(value, list) else str(value).split("|")
            meta["subjects"] = [str(s).strip() for s in items if str(s).strip()]
        else:
            meta[key] = str(value).strip()
    return meta
