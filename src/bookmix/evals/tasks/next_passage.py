"""``next_passage`` (scene linking): which candidate passage continues the context?

Each candidate is scored raw, log p(cand | ctx), and calibrated, log p(cand | ctx) − log p(cand | start): the
calibrated score asks how much the context raised the passage's likelihood, which removes the pull of passages
that are simply common text (the unconditional score starts from the end-of-book token, the same token that
separates books in training). Accuracy is the share of items whose true passage scores highest; the margin is the
true passage's score minus the best distractor's, per token: a continuous score that ranks models long before
accuracies leave chance.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from bookmix.errors import BookmixError
from bookmix.evals.cache import cached_items
from bookmix.evals.passages import PassageSpec, build_passage_items
from bookmix.evals.tasks.base import EvalContext, MetricData, TaskConfig, TaskOutput, best_distractor, register
from bookmix.evals.textsource import heldout_books


class NextPassage(TaskConfig):
    type: Literal["next_passage"] = "next_passage"
    n_items: int = Field(default=200, ge=1)
    """200 items × 4 candidates: an accuracy standard error near 3 points, a margin's far smaller."""
    context_tokens: int = Field(default=128, ge=1)
    """Half a nano model's 256-token context, leaving room for the passage; longer contexts are left-truncated."""
    passage_tokens: int = Field(default=32, ge=1)
    gap_tokens: int = Field(default=0, ge=0)
    """Tokens skipped between context and true passage: > 0 removes the local cue (a sentence cut in half) and makes
    the task about the scene, not the next word."""
    n_same_book: int = Field(default=2, ge=0)
    """Distractors from the same book, at least ``min_distance`` tokens away: same style and names, other scene."""
    n_other_books: int = Field(default=1, ge=0)
    """Distractors from other held-out books (any shortfall of same-book ones is made up from other books)."""
    min_distance: int = Field(default=2048, ge=1)
    max_books: int = Field(default=64, ge=1)
    where: str | None = None
    """Optional SQL filter over the catalog on top of the holdout split."""

    metrics: ClassVar[dict[str, bool]] = {
        "acc": True,
        "acc_calibrated": True,
        "margin": True,
        "margin_calibrated": True,
        "logprob": True,
    }


@register("next_passage", NextPassage)
def run(cfg: NextPassage, ctx: EvalContext) -> TaskOutput:
    if cfg.n_same_book + cfg.n_other_books < 1:
        raise BookmixError(f"{cfg.key}: needs at least one distractor (n_same_book + n_other_books ≥ 1)")
    lib = ctx.library
    books = heldout_books(lib, cfg.where)[: cfg.max_books]
    spec = PassageSpec(cfg.context_tokens, cfg.passage_tokens, cfg.gap_tokens, cfg.n_same_book, cfg.n_other_books,
                       cfg.min_distance)
    ids, counts = [b.id for b in books], [int(b.tokens) for b in books]
    payload = {"task": cfg.cache_fields(), "seed": ctx.seed, "books": ids, "vocab": lib.vocab_size}
    items = cached_items(ctx.cache_dir, "next_passage", payload,
                         lambda: build_passage_items(ids, counts, cfg.n_items, spec, ctx.seed))
    if not items:
        raise BookmixError(f"{cfg.key}: no held-out book has {spec.context_tokens + spec.gap_tokens + spec.passage_tokens}"
                           f" tokens for a context and a passage (in {lib.path})")

    tokens = {b: np.asarray(lib.tokens(b), dtype=np.int64) for b in {it["book"] for it in items} | {
        c[0] for it in items for c in it["candidates"]}}

    def span(s):
        return tokens[s[0]][s[1] : s[1] + s[2]]

    start = np.array([lib.eob_id], dtype=np.int64)
    contexts, conts, owner = [], [], []
    for i, it in enumerate(items):  # a loop per item: builds the pair lists, no per-token work
        c = span(it["context"])
        for cand in it["candidates"]:
            contexts += [c, start]  # conditional, then unconditional (for calibration)
            conts += [span(cand), span(cand)]
            owner.append(i)
    s = ctx.scorer.score(contexts, conts)
    cond, uncond = s.logprob[0::2], s.logprob[1::2]
    n_tok = np.maximum(s.n_tokens[0::2], 1)

    owner_arr = np.asarray(owner)
    answers = np.array([it["answer"] for it in items])
    k = np.array([len(it["candidates"]) for it in items])
    offsets = np.concatenate([[0], np.cumsum(k)[:-1]])
    true_idx = offsets + answers  # flat index of every item's true candidate

    out = TaskOutput(n_items=len(items), info={"chance": float(np.mean(1.0 / k)), "candidates": int(k.max())})
    for suffix, score in (("", cond / n_tok), ("_calibrated", (cond - uncond) / n_tok)):
        best_other = best_distractor(score, owner_arr, true_idx, len(items))
        margin = score[true_idx] - best_other
        out.metrics[f"acc{suffix}"] = MetricData.mean(margin > 0)
        out.metrics[f"margin{suffix}"] = MetricData.mean(margin)
    out.metrics["logprob"] = MetricData.mean(cond[true_idx] / n_tok[true_idx])
    return out

