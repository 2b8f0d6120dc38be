"""``samples``: continuations of given prompts, kept for the dashboard (read by people, not scored)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from bookmix.evals.tasks.base import EvalContext, TaskConfig, TaskOutput, register


class Samples(TaskConfig):
    type: Literal["samples"] = "samples"
    prompts: list[str] = Field(min_length=1)
    max_new_tokens: int = Field(default=64, ge=1)
    """64 tokens ≈ two sentences: enough to see whether a model keeps a thread, cheap on CPU."""
    temperature: float = Field(default=0.0, ge=0.0)
    """0 is greedy (one deterministic continuation); above 0 samples ``n`` seeded continuations."""
    top_k: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1)

    metrics: ClassVar[dict[str, bool]] = {}


@register("samples", Samples)
def run(cfg: Samples, ctx: EvalContext) -> TaskOutput:
    lib = ctx.library
    start = np.array([lib.eob_id], dtype=np.int64)
    n = 1 if cfg.temperature == 0 else cfg.n
    out = TaskOutput(n_items=0)
    for i, (prompt, ids) in enumerate(zip(cfg.prompts, lib.encode(cfg.prompts), strict=True)):
        rows = ctx.scorer.generate(np.concatenate([start, ids.astype(np.int64)]), cfg.max_new_tokens, n=n,
                                   temperature=cfg.temperature, top_k=cfg.top_k, seed=ctx.seed + i, stop_id=lib.eob_id)
        out.samples.append({"task": cfg.key, "prompt": prompt, "completions": [lib.decode(r) for r in rows]})
    return out
