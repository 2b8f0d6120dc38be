"""``heldout_loss``: cross-entropy and bits per byte on held-out books (or given text files), overall and per
language / genre.

Each book contributes up to ``tokens_per_book`` tokens from its middle (title pages and tables of contents at the
ends are not typical text). They are cut into windows of ``block_size + 1`` tokens, consecutive windows sharing one
token, so every token but the first is predicted once. Items are windows. Bits per byte divide the summed nats by
ln 2 and by the UTF-8 bytes of the predicted text, so models with different tokenizers compare.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from bookmix.errors import BookmixError
from bookmix.evals.tasks.base import EvalContext, MetricData, TaskConfig, TaskOutput, register
from bookmix.evals.textsource import heldout_books


class HeldoutLoss(TaskConfig):
    type: Literal["heldout_loss"] = "heldout_loss"
    max_books: int = Field(default=64, ge=1)
    """Held-out books used (the first in catalog order). 64 books × 4096 tokens ≈ 260k tokens: a few seconds for a
    nano model on CPU, and a loss whose standard error is far below the differences between datasets."""
    tokens_per_book: int = Field(default=4096, ge=2)
    where: str | None = None
    """Optional SQL filter over the catalog (``lang = 'en'``) on top of the holdout split."""
    files: list[str] = []
    """Plain UTF-8 text files to score instead of held-out books (relative to the suite file, or ``{library}/...``)."""
    by: list[str] = ["lang", "genre"]
    """Breakdowns: a Book attribute or a key of ``book.extra``; books without the key are left out of it."""

    metrics: ClassVar[dict[str, bool]] = {"loss": False, "bpb": False}


@register("heldout_loss", HeldoutLoss)
def run(cfg: HeldoutLoss, ctx: EvalContext) -> TaskOutput:
    lib, T = ctx.library, ctx.scorer.block_size
    sources: list[tuple[np.ndarray, dict[str, str]]] = []
    if cfg.files:
        paths = [ctx.resolve(f) for f in cfg.files]
        for p in paths:
            if not p.is_file():
                raise BookmixError(f"{cfg.key}.files: {p}: no such file")
        texts = [p.read_text(encoding="utf-8") for p in paths]
        for p, ids in zip(paths, lib.encode(texts), strict=True):
            sources.append((ids, {"file": p.name}))
    else:
        for book in heldout_books(lib, cfg.where)[: cfg.max_books]:
            toks = lib.tokens(book.id)
            labels = {k: str(v) for k in cfg.by if (v := _attribute(book, k)) not in (None, "")}
            sources.append((toks, labels))

    windows, labels = [], []
    for toks, lab in sources:
        n = min(len(toks), cfg.tokens_per_book)
        start = (len(toks) - n) // 2
        piece = np.asarray(toks[start : start + n], dtype=np.int64)
        if len(piece) < 2:
            continue
        n_win = max(1, math.ceil((len(piece) - 1) / T))
        for w in range(n_win):  # a loop per window (≤ block_size tokens each), not per token
            windows.append(piece[w * T : w * T + T + 1])
            labels.append(lab)
    if not windows:
        raise BookmixError(f"{cfg.key}: no held-out text to score in {lib.path}")

    scores = ctx.scorer.score([w[:1] for w in windows], [w[1:] for w in windows])
    nats = -scores.logprob
    n_bytes = np.array([len(lib.decode(w[1:]).encode("utf-8")) for w in windows], dtype=np.float64)
    tokens = scores.n_tokens.astype(np.float64)
    out = TaskOutput(n_items=len(windows), info={"tokens": int(tokens.sum()), "bytes": int(n_bytes.sum())})
    out.metrics["loss"] = MetricData(nats, tokens, higher_is_better=False)
    out.metrics["bpb"] = MetricData(nats / math.log(2), n_bytes, higher_is_better=False)
    keys = sorted({k for lab in labels for k in lab})
    for key in keys:
        values = np.array([lab.get(key, "") for lab in labels], dtype=object)
        for v in sorted(set(values) - {""}):
            mask = (values == v).astype(np.float64)
            out.metrics[f"loss@{key}={v}"] = MetricData(nats * mask, tokens * mask, higher_is_better=False)
            out.metrics[f"bpb@{key}={v}"] = MetricData(nats / math.log(2) * mask, n_bytes * mask, higher_is_better=False)
    return out


def _attribute(book, key: str):
    if hasattr(book, key):
        return getattr(book, key)
    return (getattr(book, "extra", None) or {}).get(key)
