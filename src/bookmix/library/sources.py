"""What to ingest: SRC arguments (files, folders, ``hf:NAME[:SPLIT]``) expanded into a stream of jobs.

A job is small (a path, or one dataset record's text) so that it can be sent to a worker process; the heavy work
(reading, cleaning, encoding) happens there. Each job has a stable ``key`` (the file's real path, or
``hf:NAME:SPLIT#ID``) that the catalog records once it is done, so a re-run skips it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookmix.errors import BookmixError
from bookmix.library.readers import SUFFIXES, kind_of


@dataclass
class Job:
    key: str
    source: str  # what the catalog shows as the book's source
    path: str | None = None
    text: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class HFFields:
    """Which dataset columns hold the text and the metadata (``--text-field`` etc.)."""

    text: str = "text"
    id: str | None = None
    title: str | None = None
    author: str | None = None
    lang: str | None = None
    year: str | None = None
    subjects: str | None = None


def expand_files(sources: list[str | os.PathLike]) -> list[Path]:
    """Files named directly plus every supported file under named folders (recursive, sorted, hidden skipped)."""
    files: list[Path] = []
    for src in sources:
        if str(src).startswith("hf:"):
            continue
        path = Path(src)
        if path.is_dir():
            found = [
                p
                for p in path.rglob("*")
                if p.is_file() and kind_of(p) and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            files += sorted(found)
        elif path.is_file():
            files.append(path)  # an unsupported type named directly is rejected with its reason, not skipped
        else:
            raise BookmixError(f"{src}: no such file or folder")
    return files


def file_jobs(files: list[Path], sidecar: dict[str, dict[str, Any]]) -> Iterator[Job]:
    for path in files:
        key = os.path.realpath(path)
        yield Job(key=key, source=str(path), path=str(path), meta=sidecar.get(key, {}))


def hf_sources(sources: list[str | os.PathLike]) -> list[str]:
    return [str(s) for s in sources if str(s).startswith("hf:")]


def parse_hf(spec: str) -> tuple[str, str]:
    """``hf:NAME[:SPLIT]`` → (NAME, SPLIT); NAME may be a hub id or a local parquet/jsonl file or folder."""
    body = spec[3:]
    name, split = body, "train"
    if ":" in body and not os.path.exists(body):
        name, _, split = body.rpartition(":")
    if not name:
        raise BookmixError(f"{spec}: expected hf:NAME[:SPLIT]")
    return name, split or "train"


def hf_jobs(spec: str, fields: HFFields) -> Iterator[Job]:
    """Stream one dataset's records as jobs (never the whole dataset in memory)."""
    datasets = _require_datasets()
    name, split = parse_hf(spec)
    ds = _load_streaming(datasets, name, split)
    for i, rec in enumerate(ds):
        if fields.text not in rec:
            raise BookmixError(f"{spec}: record {i} has no field {fields.text!r} (use --text-field; has {sorted(rec)})")
        rid = str(rec[fields.id]) if fields.id and rec.get(fields.id) is not None else str(i)
        meta: dict[str, Any] = {"extra": {}}
        for attr in ("title", "author", "lang", "year"):
            col = getattr(fields, attr)
            if col and rec.get(col) not in (None, ""):
                meta[attr] = rec[col]
        if "year" in meta:
            try:
                meta["year"] = int(str(meta["year"])[:4].lstrip("+")) if not isinstance(meta["year"], int) else meta["year"]
            except ValueError:
                del meta["year"]
        if fields.subjects and rec.get(fields.subjects) not in (None, "", []):
            value = rec[fields.subjects]
            meta["subjects"] = [str(v) for v in value] if isinstance(value, list | tuple) else str(value).split("|")
        used = {fields.text, *(getattr(fields, a) for a in ("title", "author", "lang", "year", "subjects"))}
        for col, value in rec.items():
            if col not in used and _small(value):
                meta["extra"][col] = value  # small columns (urls, dates, ids, short lists) kept as they came
        yield Job(key=f"hf:{name}:{split}#{rid}", source=f"hf:{name}:{split}#{rid}", text=record_text(rec[fields.text]), meta=meta)


PAGE_BREAK = "\n\n"  # pages of a scanned book (a list of strings) join as paragraphs; cleaning tidies the rest


def record_text(value: Any) -> str:
    """A record's text: a string, or a list of page strings (scanned-book corpora store one string per page)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(p, str) or p is None for p in value):
        return PAGE_BREAK.join(p.strip("\n") for p in value if p and p.strip())
    return ""  # anything else is rejected as empty text, with the source named


def _small(value: Any) -> bool:
    if isinstance(value, str | int | float | bool):
        return len(str(value)) <= 500
    if isinstance(value, list | tuple):
        return len(value) <= 50 and all(isinstance(v, str | int | float | bool) for v in value) and len(str(value)) <= 500
    return False


def _require_datasets():
    from bookmix.errors import require

    return require("datasets", "hf", "hf: sources")


_LOCAL_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".txt": "text"}


def _load_streaming(datasets, name: str, split: str):
    path = Path(name)
    try:
        if path.exists():
            files = sorted(p for p in path.rglob("*") if p.suffix in _LOCAL_BUILDERS) if path.is_dir() else [path]
            if not files:
                raise BookmixError(f"hf:{name}: no {', '.join(_LOCAL_BUILDERS)} files here")
            builder = _LOCAL_BUILDERS.get(files[0].suffix)
            if builder is None:
                raise BookmixError(f"hf:{name}: unsupported local file type {files[0].suffix}")
            return datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train", streaming=True)
        return datasets.load_dataset(name, split=split, streaming=True)
    except BookmixError:
        raise
    except Exception as exc:
        raise BookmixError(f"hf:{name}:{split}: cannot open the dataset ({type(exc).__name__}: {exc})") from exc


__all__ = ["SUFFIXES", "HFFields", "Job", "expand_files", "file_jobs", "hf_jobs", "hf_sources", "parse_hf"]
