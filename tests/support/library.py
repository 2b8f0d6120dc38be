"""Helpers for other rooms' tests: a real library (trained BPE, real store and catalog) from a few strings.

lib = make_library(tmp_path, {"a": "Once upon a time ..." * 100, "b": ...}, holdout=0.2)
"""

from __future__ import annotations

import itertools
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


# -- made near-duplicates (tests and bench/dedup_score.py) ---------------------------------------------------------
# Characters OCR engines confuse (a scanned "m" read as "rn", "l" as "1", ...): each noisy word gets one swap.
_OCR_SWAPS = {"m": "rn", "l": "1", "e": "c", "o": "0", "i": "í", "a": "o", "h": "b", "n": "u", "t": "f", "s": "5",
              "о": "0", "е": "с", "и": "н", "т": "г", "а": "о", "л": "п"}  # fmt: skip


def with_preface(text: str, preface: str, replace_words: int = 2000) -> str:
    """A reissue: the first ``replace_words`` words (the old front matter) replaced by another preface."""
    words = text.split(" ")
    return preface.strip() + "\n\n" + " ".join(words[replace_words:])


def drop_words(text: str, fraction: float = 0.02, seed: int = 0) -> str:
    """An edition with ``fraction`` of its words dropped at random places."""
    import numpy as np

    words = text.split(" ")
    keep = np.random.default_rng(seed).random(len(words)) >= fraction
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


def ocr_noise(text: str, word_rate: float = 0.03, seed: int = 0) -> str:
    """An OCR variant: ``word_rate`` of the words get one confusable character swapped (l→1, m→rn, e→c, ...), and
    some lines are hyphen-broken, as a scan of the same pages would read."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = text.split(" ")
    hit = np.flatnonzero(rng.random(len(words)) < word_rate)
    for i in hit.tolist():
        w = words[i]
        at = [j for j, c in enumerate(w) if c in _OCR_SWAPS]
        if at:
            j = at[int(rng.integers(len(at)))]
            words[i] = w[:j] + _OCR_SWAPS[w[j]] + w[j + 1 :]
    for i in np.flatnonzero(rng.random(len(words)) < word_rate / 3).tolist():
        w = words[i]
        if len(w) > 5 and w.isalpha():
            words[i] = w[: len(w) // 2] + "-\n" + w[len(w) // 2 :]
    return " ".join(words)


def dedup_quality(lib: Library, books: Path, variants: dict[str, tuple[str, str]]) -> tuple[float, float, int, int]:
    """Made near-duplicates against the catalog's ``dup_of`` marks: ``variants`` maps a variant's file name to (its
    original's path relative to ``books``, its text). Returns (recall over the pairs of one original's books, pair
    precision of the clusters, pairs found, true pairs)."""
    source_of = {b.id: b.source for b in lib.books()}
    work = {}  # book id -> the original file it is (a variant's original)
    for b_id, src in source_of.items():
        name = Path(src).name
        work[b_id] = variants[name][0] if name in variants else str(Path(src).relative_to(books))
    canon = {b.id: (b.extra.get("dup_of") or b.id) for b in lib.books()}
    clusters: dict[str, list[str]] = {}
    for b, c in canon.items():
        clusters.setdefault(c, []).append(b)
    found = [(a, b) for m in clusters.values() for a, b in itertools.combinations(sorted(m), 2)]
    true_found = sum(work[a] == work[b] for a, b in found)
    by_work: dict[str, list[str]] = {}
    for b, w in work.items():
        by_work.setdefault(w, []).append(b)
    truth = [(a, b) for m in by_work.values() for a, b in itertools.combinations(sorted(m), 2)]
    recall = sum(canon[a] == canon[b] for a, b in truth) / max(len(truth), 1)
    precision = true_found / len(found) if found else 1.0
    return recall, precision, len(found), len(truth)
