"""Built items cached in the library folder, keyed by the task's item settings, the seed and the held-out books.

Building items from held-out books is deterministic for a seed, so the cache is only a speed-up: the key changes
whenever anything that decides the items changes (settings, seed, which books are held out, the tokenizer), and a
stale or half-written file can never be read (writes are atomic). Scoring settings (names, groups) are not in the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bookmix.utils.io import atomic_write_text

CACHE_DIR = "evals"
"""Sub-folder of the library holding built items: LIBRARY/evals/<type>-<key>.jsonl."""


def cache_key(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def cached_items(
    folder: Path | None, kind: str, payload: dict[str, Any], build: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Items from ``folder/<kind>-<key>.jsonl`` if present, else ``build()`` and write them (atomically)."""
    if folder is None:
        return build()
    path = Path(folder) / f"{kind}-{cache_key(payload)}.jsonl"
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    items = build()
    # A read-only library still evaluates; it just rebuilds its items next time.
    with contextlib.suppress(OSError):
        atomic_write_text(path, "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items))
    return items
