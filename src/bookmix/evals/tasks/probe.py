"""``probe_shelf``: what a model took in from the probe shelf (:mod:`bookmix.storyworld.shelf`) that its recipe read
beside its books — fact recall, logical transfer and cross-book synthesis, in each of the shelf's languages.

    - {name: transfer, type: probe_shelf, kind: logical_transfer, group: reasoning, shelf: {langs: [en, ru]}}

``shelf`` must equal the campaign's ``search.probe_shelf`` (its defaults are the same), or the probes ask about books
the model never read. Every probe is a multiple choice scored as a continuation, all in one batched scoring pass:

  fact_recall, logical_transfer   acc: the right choice scores best; prob: its probability among the choices
  synthesis                       two hops: the model answers the first (the fact) itself, the second (the rule) is
                                  asked about *its* answer; acc: both right; prob: p(right fact) · p(right end | it)

Chance is 1/choices (0.25) for acc and prob; for synthesis' prob 1/choices². Breakdowns: ``acc@lang=ru`` and
``acc@book=en/rule_000`` (the almanac a fact comes from, the primer a rule comes from), for ablations.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from bookmix.evals.tasks.base import EvalContext, MetricData, TaskConfig, TaskOutput, choice_prob, register
from bookmix.evals.tasks.choice import _add_groups
from bookmix.recipes.shelf import ProbeShelf


class ProbeShelfTask(TaskConfig):
    type: Literal["probe_shelf"] = "probe_shelf"
    kind: Literal["fact_recall", "logical_transfer", "synthesis"]
    shelf: ProbeShelf = Field(default_factory=ProbeShelf)
    """The shelf the probes ask about (``exclude`` is ignored: an ablated model is asked the same probes)."""
    metrics: ClassVar[dict[str, bool]] = {"acc": True, "prob": True}


def _flat(questions, ctx: EvalContext):
    """Score every (context, choice) of ``questions`` in one batch; per question: the choices' log-probabilities."""
    lib = ctx.library
    contexts = [q[0] for q in questions for _ in q[1]]
    conts = [c for q in questions for c in q[1]]
    start = np.array([lib.eob_id], dtype=np.int64)
    enc_ctx, enc_cont = lib.encode(contexts), lib.encode(conts)
    s = ctx.scorer.score(
        [np.concatenate([start, c.astype(np.int64)]) for c in enc_ctx], [c.astype(np.int64) for c in enc_cont]
    )
    out, at = [], 0
    for q in questions:
        out.append(s.logprob[at : at + len(q[1])])
        at += len(q[1])
    return out


def _prob(lp: np.ndarray, answer: int) -> float:
    return float(choice_prob(lp, np.zeros(len(lp), dtype=np.int64), np.array([answer]), 1)[0])


@register("probe_shelf", ProbeShelfTask)
def run(cfg: ProbeShelfTask, ctx: EvalContext) -> TaskOutput:
    probes = [p for p in cfg.shelf.build().probes if p.kind == cfg.kind]
    if cfg.kind == "synthesis":
        # Per probe: the first hop, then the second hop from each first-hop choice (k + 1 questions, one batch).
        questions = []
        for p in probes:
            questions.append((p.first.context, p.first.choices))
            questions += [(c, p.question.choices) for c in p.second_contexts]
        lps = _flat(questions, ctx)
        acc, prob, per = [], [], 1 + len(probes[0].second_contexts) if probes else 1
        for i, p in enumerate(probes):
            first, seconds = lps[i * per], lps[i * per + 1 : (i + 1) * per]
            picked = int(np.argmax(first))  # the model's own answer to the first hop
            acc.append(int(np.argmax(seconds[picked])) == p.question.answer)
            prob.append(_prob(first, p.first.answer) * _prob(seconds[p.first.answer], p.question.answer))
    else:
        lps = _flat([(p.question.context, p.question.choices) for p in probes], ctx)
        acc = [int(np.argmax(lp)) == p.question.answer for lp, p in zip(lps, probes, strict=True)]
        prob = [_prob(lp, p.question.answer) for lp, p in zip(lps, probes, strict=True)]
    per_item = {"acc": MetricData.mean(np.array(acc, dtype=np.float64)), "prob": MetricData.mean(np.array(prob))}
    k = np.mean([len(p.question.choices) for p in probes])
    out = TaskOutput(
        n_items=len(probes),
        metrics=dict(per_item),
        info={"chance": float(1 / k), "langs": list(cfg.shelf.langs), "kind": cfg.kind},
    )
    _add_groups(out, [p.lang for p in probes], per_item, "lang")
    _add_groups(out, [p.book for p in probes], per_item, "book")
    return out
