"""``entity_recall`` (long-range, LAMBADA-like): predict a name seen earlier in the context but not in its last
sentence. Accuracy is LAMBADA's (greedy decoding reproduces every token of the name); the continuous score is the
name's log-probability (summed over its tokens), which moves long before a small model gets names exactly right.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from bookmix.errors import BookmixError
from bookmix.evals.cache import cached_items
from bookmix.evals.entities import build_entity_items, find_names
from bookmix.evals.tasks.base import EvalContext, MetricData, TaskConfig, TaskOutput, register
from bookmix.evals.textsource import heldout_books


class EntityRecall(TaskConfig):
    type: Literal["entity_recall"] = "entity_recall"
    n_items: int = Field(default=200, ge=1)
    context_chars: int = Field(default=800, ge=50)
    """~800 characters ≈ 180-200 tokens of English with a 16k vocabulary: inside a nano model's 256-token context,
    so the earlier mention is visible to the model (longer contexts are left-truncated and may lose it)."""
    min_count: int = Field(default=3, ge=1)
    """A word must be capitalised mid-sentence this often in its book to count as a name."""
    min_gap_chars: int = Field(default=0, ge=0)
    """Require the nearest earlier mention at least this far back (raise it to test longer range)."""
    tokens_per_book: int = Field(default=50_000, ge=100)
    """Tokens decoded from the middle of each book to find names and items in: ~200k characters hold a novel's
    main characters many times over, and decoding whole long books would dominate the task's time."""
    max_books: int = Field(default=64, ge=1)
    where: str | None = None

    metrics: ClassVar[dict[str, bool]] = {"acc": True, "logprob": True, "logprob_per_token": True}


@register("entity_recall", EntityRecall)
def run(cfg: EntityRecall, ctx: EvalContext) -> TaskOutput:
    lib = ctx.library
    books = heldout_books(lib, cfg.where)[: cfg.max_books]
    payload = {"task": cfg.cache_fields(), "seed": ctx.seed, "books": [b.id for b in books], "vocab": lib.vocab_size}
    items = cached_items(ctx.cache_dir, "entity_recall", payload, lambda: _build(cfg, lib, books, ctx.seed))
    if not items:
        raise BookmixError(f"{cfg.key}: found no names to recall in the held-out books of {lib.path}")
    contexts = lib.encode([it["context"] for it in items])
    targets = lib.encode([it["target"] for it in items])
    s = ctx.scorer.score([np.asarray(c, dtype=np.int64) for c in contexts], [np.asarray(t, dtype=np.int64) for t in targets],
                          greedy=True)
    out = TaskOutput(n_items=len(items), info={"books": len({it["book"] for it in items}),
                                               "mean_distance_chars": float(np.mean([it["distance"] for it in items]))})
    out.metrics["acc"] = MetricData.mean(s.greedy)
    out.metrics["logprob"] = MetricData.mean(s.logprob)
    out.metrics["logprob_per_token"] = MetricData(s.logprob, s.n_tokens.astype(np.float64))
    return out


def _build(cfg: EntityRecall, lib, books, seed: int) -> list[dict]:
    """Items spread evenly over the books (a fixed quota each, so one long novel does not supply them all)."""
    quota = max(1, math.ceil(cfg.n_items / len(books)))
    items: list[dict] = []
    for k, book in enumerate(books):
        toks = lib.tokens(book.id)
        start = max(0, (len(toks) - cfg.tokens_per_book) // 2)
        text = lib.decode(toks[start : start + cfg.tokens_per_book])
        rng = np.random.default_rng([seed, k])
        for it in build_entity_items(text, find_names(text, cfg.min_count), quota, cfg.context_chars, rng,
                                     cfg.min_gap_chars):
            items.append({"book": book.id, **it})
    return items[: cfg.n_items]
