"""The per-book work done in a worker process: read → clean → check → hash → encode → features.

Workers return a :class:`Processed` record (tokens as a numpy array) and never touch the catalog or the store:
one writer per file, the ingest driver.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bookmix.library.clean import clean
from bookmix.library.features import text_features
from bookmix.library.langdetect import detect
from bookmix.library.readers import Rejected, read, suffix_free_name
from bookmix.library.sources import Job
from bookmix.library.store import token_dtype

CHUNK_CHARS = 1 << 20  # encode in ~1 MB pieces: bounded Encoding objects, as fast as whole books (measured)
# A chunk may end only right before a "\n" that is followed by a visible character: byte-level pre-tokenization
# splits there anyway, so encoding the pieces gives exactly the ids of encoding the whole book.
_CUT = re.compile(r"(?=\n\S)")


@dataclass
class Processed:
    key: str
    source: str
    reason: str | None = None  # set when rejected
    id: str = ""
    sha256: str = ""
    chars: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    tokens: np.ndarray | None = None


_STATE: dict[str, Any] = {}


def init_worker(tokenizer_path: str, vocab_size: int, min_chars: int, single_thread: bool) -> None:
    """Load the tokenizer once per process. With several processes, each encodes on one thread (no oversubscription)."""
    if single_thread:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from bookmix.library.tokenizer import load

    _STATE.update(tok=load(Path(tokenizer_path)), vocab_size=vocab_size, min_chars=min_chars)


def split_chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into pieces of about ``size`` chars at safe points (see ``_CUT``); one loop step per piece."""
    pieces, start, n = [], 0, len(text)
    while n - start > size:
        m = _CUT.search(text, start + size)
        if m is None:
            break
        pieces.append(text[start : m.start()])
        start = m.start()
    pieces.append(text[start:])
    return pieces


def encode(tok, text: str, dtype: np.dtype) -> np.ndarray:
    encs = tok.encode_batch_fast(split_chunks(text), add_special_tokens=False)
    return np.concatenate([np.asarray(e.ids, dtype=dtype) for e in encs]) if encs else np.zeros(0, dtype)


def process(job: Job) -> Processed:
    out = Processed(key=job.key, source=job.source)
    try:
        doc_meta: dict[str, Any] = {}
        if job.path is not None:
            doc = read(Path(job.path))
            raw, doc_meta = doc.text, doc.meta
        else:
            raw = job.text or ""
            if not raw.strip():
                raise Rejected("empty text")
        text, header = clean(raw)
        if len(text) < _STATE["min_chars"]:
            raise Rejected(f"too short: {len(text)} chars after cleaning (minimum {_STATE['min_chars']})")
    except Rejected as exc:
        out.reason = str(exc)
        return out
    out.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    out.id = out.sha256[:16]
    out.chars = len(text)
    out.meta = merge_meta(job, header, doc_meta, text)
    out.tokens = encode(_STATE["tok"], text, token_dtype(_STATE["vocab_size"]))
    out.features = text_features(text, out.tokens, _STATE["vocab_size"])
    return out


def merge_meta(job: Job, header: dict[str, str], doc_meta: dict[str, Any], text: str) -> dict[str, Any]:
    """Sidecar or dataset fields win over what the file declares, which wins over a Gutenberg header, then guesses."""
    extra: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for layer in (header, doc_meta, job.meta):
        for k, v in layer.items():
            if k == "extra":
                extra.update(v)
            elif k == "release_date":
                extra.setdefault("release_date", v)
            elif v not in (None, "", []):
                meta[k] = v
    if not meta.get("lang"):
        meta["lang"] = detect(text)
    if not meta.get("title"):
        meta["title"] = suffix_free_name(job.source) if job.path else ""
    meta["extra"] = extra
    return meta
