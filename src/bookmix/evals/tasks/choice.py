"""``multiple_choice`` and ``minimal_pairs``: items from jsonl files, scored by log-likelihood.

multiple_choice lines: ``{"context": str, "choices": [str, ...], "answer": int | str, "group": str?}`` (storyworld's
items, logical-transfer and cross-book synthesis items the user writes). Each choice is scored as a continuation
of the context; ``acc`` takes the highest summed log-likelihood, ``acc_norm`` the highest per UTF-8 byte of the
choice (lm-evaluation-harness's acc_norm: a long choice is not punished for its length, whatever the tokenizer).
``margin`` (correct minus best wrong, nats) and ``logprob`` (the correct choice's) are the continuous scores, and
``prob`` the bounded one: the correct choice's probability among the choices (chance 1/k).

minimal_pairs lines: ``{"good": str, "bad": str, "group": str?}`` as in BLiMP: right when the good sentence is more
likely (summed, whole sentence after the start token). ``margin`` is log p(good) − log p(bad), ``prob`` is
p(good) / (p(good) + p(bad)).

Items with a ``group`` also get per-group metrics (``facts/acc@group=fact_recall``).
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from bookmix.errors import BookmixError
from bookmix.evals.tasks.base import (
    EvalContext,
    MetricData,
    TaskConfig,
    TaskOutput,
    best_distractor,
    choice_prob,
    register,
)


class JsonlTask(TaskConfig):
    path: str | list[str]
    """jsonl file(s) or glob pattern(s): relative to the suite file, absolute, or ``{library}/...``."""
    required: bool = True
    """False: a missing file skips the task (reported, not scored) instead of failing the whole evaluation."""
    max_items: int | None = Field(default=None, ge=1)
    group_depth: int = Field(default=1, ge=0)
    """Per-group metrics use the first ``group_depth`` parts of ``group`` split on '/' (0: no breakdown)."""


class MultipleChoice(JsonlTask):
    type: Literal["multiple_choice"] = "multiple_choice"
    delimiter: str = " "
    """Put between context and choice when neither side has whitespace there (storyworld's choices start with one)."""
    metrics: ClassVar[dict[str, bool]] = {"acc": True, "acc_norm": True, "margin": True, "logprob": True, "prob": True}


class MinimalPairs(JsonlTask):
    type: Literal["minimal_pairs"] = "minimal_pairs"
    metrics: ClassVar[dict[str, bool]] = {"acc": True, "margin": True, "prob": True}


def read_jsonl(cfg: JsonlTask, ctx: EvalContext) -> tuple[list[dict], list[str]]:
    """Lines of every matching file, in file order; a bad line fails naming the file and line."""
    patterns = [cfg.path] if isinstance(cfg.path, str) else cfg.path
    files: list[Path] = []
    for pat in patterns:
        p = ctx.resolve(pat)
        found = sorted(Path(f) for f in glob.glob(str(p))) if glob.has_magic(str(p)) else ([p] if p.is_file() else [])
        files += found
    if not files:
        if cfg.required:
            raise BookmixError(f"{cfg.key}.path: no file matches {', '.join(str(ctx.resolve(p)) for p in patterns)}")
        return [], []
    items = []
    for f in files:
        with f.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BookmixError(f"{f}:{n}: not valid JSON ({exc.msg})") from None
                items[-1]["_where"] = f"{f}:{n}"
    return items[: cfg.max_items], [str(f) for f in files]


def _group(it: dict, depth: int) -> str:
    g = it.get("group")
    return "/".join(str(g).split("/")[:depth]) if g and depth else ""


def _add_groups(out: TaskOutput, groups: list[str], per_item: dict[str, MetricData], key: str = "group") -> None:
    arr = np.array(groups, dtype=object)
    for g in sorted(set(groups) - {""}):
        mask = (arr == g).astype(np.float64)
        for name, m in per_item.items():
            out.metrics[f"{name}@{key}={g}"] = MetricData(m.num * mask, m.den * mask, m.higher_is_better)


def _skipped(files: list[str], cfg: JsonlTask) -> TaskOutput:
    return TaskOutput(n_items=0, info={"skipped": f"no items at {cfg.path}", "files": files})


@register("multiple_choice", MultipleChoice)
def run_multiple_choice(cfg: MultipleChoice, ctx: EvalContext) -> TaskOutput:
    items, files = read_jsonl(cfg, ctx)
    if not items:
        return _skipped(files, cfg)
    lib = ctx.library
    ctx_texts, cont_texts, owner, answers = [], [], [], []
    for i, it in enumerate(items):
        where = it["_where"]
        context, choices, answer = it.get("context"), it.get("choices"), it.get("answer")
        if not isinstance(context, str) or not isinstance(choices, list) or len(choices) < 2:
            raise BookmixError(f"{where}: needs \"context\" (text) and \"choices\" (a list of at least 2 texts)")
        if isinstance(answer, str) and answer in choices:
            answer = choices.index(answer)
        if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(choices):
            raise BookmixError(f"{where}: \"answer\" must be a choice index in 0..{len(choices) - 1} or one of the choices")
        answers.append(answer)
        for c in choices:
            c = str(c)
            joint = context and c and not context[-1].isspace() and not c[0].isspace()
            ctx_texts.append(context)
            cont_texts.append(cfg.delimiter + c if joint else c)
            owner.append(i)
    enc_ctx = lib.encode(ctx_texts)
    enc_cont = lib.encode(cont_texts)
    start = np.array([lib.eob_id], dtype=np.int64)
    # Every context begins after the start token, as a document does in training (and an empty context works).
    s = ctx.scorer.score([np.concatenate([start, c.astype(np.int64)]) for c in enc_ctx],
                         [c.astype(np.int64) for c in enc_cont])
    n_bytes = np.array([max(1, len(t.encode("utf-8"))) for t in cont_texts], dtype=np.float64)
    owner_arr, n = np.asarray(owner), len(items)
    k = np.bincount(owner_arr, minlength=n)
    true_idx = np.concatenate([[0], np.cumsum(k)[:-1]]) + np.asarray(answers)
    per_item: dict[str, MetricData] = {}
    for name, score in (("acc", s.logprob), ("acc_norm", s.logprob / n_bytes)):
        per_item[name] = MetricData.mean(score[true_idx] > best_distractor(score, owner_arr, true_idx, n))
    per_item["margin"] = MetricData.mean(s.logprob[true_idx] - best_distractor(s.logprob, owner_arr, true_idx, n))
    per_item["logprob"] = MetricData.mean(s.logprob[true_idx])
    per_item["prob"] = MetricData.mean(choice_prob(s.logprob, owner_arr, true_idx, n))
    out = TaskOutput(n_items=n, metrics=dict(per_item), info={"chance": float(np.mean(1.0 / k)), "files": files})
    _add_groups(out, [_group(it, cfg.group_depth) for it in items], per_item)
    return out


@register("minimal_pairs", MinimalPairs)
def run_minimal_pairs(cfg: MinimalPairs, ctx: EvalContext) -> TaskOutput:
    items, files = read_jsonl(cfg, ctx)
    if not items:
        return _skipped(files, cfg)
    for it in items:
        if not isinstance(it.get("good"), str) or not isinstance(it.get("bad"), str):
            raise BookmixError(f"{it['_where']}: needs \"good\" and \"bad\" sentences (text)")
    out = score_pairs(ctx, [it["good"] for it in items], [it["bad"] for it in items],
                      {"group": [_group(it, cfg.group_depth) for it in items]})
    out.info["files"] = files
    return out


def score_pairs(
    ctx: EvalContext, good: list[str], bad: list[str], breakdowns: dict[str, list[str]], same_length: bool = False
) -> TaskOutput:
    """Minimal pairs scored the published (BLiMP) way: each sentence's full log-probability after the start token,
    one batched pass over all sentences. ``acc``: good beats bad; ``margin``: log p(good) − log p(bad);
    ``prob``: p(good) / (p(good) + p(bad)). ``breakdowns`` {key: label per pair} add ``metric@key=label``.

    ``same_length`` adds ``acc_same_length``: accuracy on the pairs whose two sentences have equally many tokens.
    Summed log-probabilities favour the shorter sentence, so a model that knows nothing (uniform predictions) is
    right on every pair whose bad sentence is longer; on equal-length pairs it is at chance, and only what the model
    learned moves the score.

    Both sentences of a pair are scored from their first differing token: the shared prefix has the same
    log-probability in both (the model is causal), so it cancels in the margin, and only the tokens where the pair
    differs, and after, go through the output head (most of a small model's cost)."""
    lib = ctx.library
    enc = [e.astype(np.int64) for e in lib.encode([t for pair in zip(good, bad, strict=True) for t in pair])]
    start = np.array([lib.eob_id], dtype=np.int64)
    contexts, conts = [], []
    for g, b in zip(enc[0::2], enc[1::2], strict=True):
        m = min(len(g), len(b))
        differ = np.flatnonzero(g[:m] != b[:m])
        k = int(differ[0]) if len(differ) else m  # tokens shared from the start
        prefix = np.concatenate([start, g[:k]])
        contexts += [prefix, prefix]
        conts += [g[k:], b[k:]]
    s = ctx.scorer.score(contexts, conts)
    margin = s.logprob[0::2] - s.logprob[1::2]
    prob = 1.0 / (1.0 + np.exp(-np.clip(margin, -700, 700)))  # p(good) among the two
    per_item = {"acc": MetricData.mean(margin > 0), "margin": MetricData.mean(margin), "prob": MetricData.mean(prob)}
    out = TaskOutput(n_items=len(good), metrics=dict(per_item), info={"chance": 0.5})
    if same_length:
        equal = np.array([len(g) == len(b) for g, b in zip(enc[0::2], enc[1::2], strict=True)])
        out.metrics["acc_same_length"] = MetricData.mean(margin > 0, mask=equal)
        out.info["same_length_pairs"] = int(equal.sum())
    for key, labels in breakdowns.items():
        _add_groups(out, labels, per_item, key)
    return out
