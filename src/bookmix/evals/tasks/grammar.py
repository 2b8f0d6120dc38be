"""``blimp`` and ``rublimp``: the published grammar benchmarks of minimal pairs (English, Russian), scored the
published way — full-sentence log-probability, the grammatical sentence should win — through the same batched
scorer as ``minimal_pairs``.

Metrics: ``acc`` (chance 0.5), ``acc_same_length`` (the pairs of equal token length: an untrained model is at
chance there, while the published ``acc`` rewards it for preferring the shorter sentence), ``margin`` (log p(good) − log p(bad), nats) and ``prob`` (p(good) among the two, a
bounded continuous score), overall and per paradigm (``acc@paradigm=causative``) and per broader phenomenon
(``acc@phenomenon=island_effects``). Every paradigm holds 1000 pairs, so with ``max_pairs_per_paradigm`` (or none)
the pooled accuracy is the published one: the mean over paradigms.

    - {name: blimp, type: blimp, max_pairs_per_paradigm: 50}            # all 67 paradigms, 50 pairs each
    - {name: agreement, type: rublimp, paradigms: [np_agreement_case, np_agreement_gender]}

The files are read from the task's ``path``, else ``$BOOKMIX_EVALDATA/<type>/``, else the user data folder that
``bookmix evals fetch blimp|rublimp`` fills (see :mod:`bookmix.evals.benchmarks`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from bookmix.evals.benchmarks import benchmark, check_paradigms, default_dir, load_pairs
from bookmix.evals.tasks.base import EvalContext, TaskConfig, TaskOutput, register
from bookmix.evals.tasks.choice import score_pairs


class GrammarBenchmark(TaskConfig):
    path: str | None = None
    """Folder holding the benchmark's files (plain or gzipped); relative to the suite file, absolute, or
    ``{library}/...``. Default: ``$BOOKMIX_EVALDATA/<type>/`` or the user data folder (``bookmix evals fetch``)."""
    paradigms: list[str] | None = None
    """Paradigms to score (file names without suffix); None scores all of them."""
    max_pairs_per_paradigm: int | None = Field(default=None, ge=1)
    """The first N pairs of each paradigm (None: all 1000). 50 × 67 BLiMP paradigms ≈ 3.4k pairs: an accuracy
    standard error near 0.9 points, a few seconds for a nano model on CPU."""

    bench_name: ClassVar[str] = ""
    metrics: ClassVar[dict[str, bool]] = {"acc": True, "margin": True, "prob": True, "acc_same_length": True}

    @field_validator("paradigms")
    @classmethod
    def _known(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("give at least one paradigm, or leave paradigms out for all of them")
            check_paradigms(benchmark(cls.bench_name), v)
        return v


class Blimp(GrammarBenchmark):
    type: Literal["blimp"] = "blimp"
    bench_name: ClassVar[str] = "blimp"


class Rublimp(GrammarBenchmark):
    type: Literal["rublimp"] = "rublimp"
    bench_name: ClassVar[str] = "rublimp"


def run(cfg: GrammarBenchmark, ctx: EvalContext) -> TaskOutput:
    bench = benchmark(cfg.bench_name)
    folder = ctx.resolve(cfg.path) if cfg.path is not None else default_dir(bench.name)
    pairs = load_pairs(bench, folder, cfg.paradigms, cfg.max_pairs_per_paradigm)
    out = score_pairs(
        ctx,
        [p.good for p in pairs],
        [p.bad for p in pairs],
        {"paradigm": [p.paradigm for p in pairs], "phenomenon": [p.phenomenon for p in pairs]},
        same_length=True,
    )
    out.info.update(
        {
            "lang": bench.lang,
            "paradigms": len({p.paradigm for p in pairs}),
            "folder": str(folder),
            "source": bench.source,
        }
    )
    return out


register("blimp", Blimp)(run)
register("rublimp", Rublimp)(run)
