"""``lm_eval``: lm-evaluation-harness tasks run on the model's Hugging Face export, merged into the same metrics.

    - name: harness
      type: lm_eval
      tasks: [my_local_task]
      include_path: lm_tasks/        # task YAMLs (dataset_path: json with local data_files), relative to the suite

The checkpoint is exported (``bookmix.models.export.export_hf``, with the library's tokenizer) to a temporary
folder, the harness runs offline (no hub access: local tasks, or datasets already in the HF cache), and each
document's per-sample metric values come back as items, so the bootstrap, groups and the objective treat harness
metrics exactly like ours. Metrics are ``harness/acc`` over all documents and ``harness/acc@task=my_local_task``.
Needs the optional extra: ``pip install 'bookmix[lm_eval]'``.
"""

from __future__ import annotations

import os
import tempfile
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from bookmix.errors import BookmixError, require
from bookmix.evals.tasks.base import EvalContext, MetricData, TaskConfig, TaskOutput, register


class LmEval(TaskConfig):
    type: Literal["lm_eval"] = "lm_eval"
    tasks: list[str] = Field(min_length=1)
    """lm-evaluation-harness task (or group) names."""
    include_path: str | None = None
    """Folder of extra task YAMLs (relative to the suite file, or ``{library}/...``)."""
    include_defaults: bool = False
    """Also index the harness's built-in tasks (thousands of YAMLs, slower; their datasets must be cached offline)."""
    report: dict[str, bool] = {"acc": True, "acc_norm": True}
    """Per-sample metrics to take from the harness, each with True when higher is better (names the objective
    may use). Non-numeric per-sample values (perplexity tuples) are not supported."""
    num_fewshot: int | None = Field(default=None, ge=0)
    limit: int | None = Field(default=None, ge=1)
    """Documents per task (None: all)."""
    batch_size: int = Field(default=8, ge=1)

    metrics: ClassVar[dict[str, bool]] = {}

    def metric_senses(self) -> dict[str, bool]:
        return dict(self.report)


@register("lm_eval", LmEval)
def run(cfg: LmEval, ctx: EvalContext) -> TaskOutput:
    if ctx.checkpoint is None:
        raise BookmixError(f"{cfg.key}: lm_eval tasks run on an exported checkpoint; pass the checkpoint folder "
                           "(bookmix eval CHECKPOINT, or evaluate(..., checkpoint=PATH))")
    lm_eval = require("lm_eval", "lm_eval", "lm-evaluation-harness tasks")
    from lm_eval.tasks import TaskManager

    from bookmix.models.export import export_hf

    include = None
    if cfg.include_path is not None:
        include = ctx.resolve(cfg.include_path)
        if not include.is_dir():
            raise BookmixError(f"{cfg.key}.include_path: {include}: no such folder")
    # Offline: a local task must never reach for the hub, and a missing dataset should fail, not download.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bookmix-hf-") as tmp:
        export_hf(ctx.checkpoint, tmp, ctx.library.path / "tokenizer.json")
        manager = TaskManager(include_path=str(include) if include else None, include_defaults=cfg.include_defaults)
        unknown = [t for t in cfg.tasks if t not in manager.all_tasks]
        if unknown:
            raise BookmixError(f"{cfg.key}.tasks: unknown lm_eval task(s) {', '.join(unknown)}"
                               f"{f' (not in {include})' if include else ''}")
        res = lm_eval.simple_evaluate(
            model="hf", model_args={"pretrained": tmp, "dtype": "float32"}, tasks=list(cfg.tasks),
            task_manager=manager, device=str(ctx.scorer.device), batch_size=cfg.batch_size,
            num_fewshot=cfg.num_fewshot, limit=cfg.limit, bootstrap_iters=0, log_samples=True,
            random_seed=ctx.seed, numpy_random_seed=ctx.seed, torch_random_seed=ctx.seed, fewshot_random_seed=ctx.seed,
        )
    return _merge(cfg, res)


def _merge(cfg: LmEval, res: dict) -> TaskOutput:
    """Per-sample values of every harness task as our items: one array per metric, one mask per harness task."""
    names, values = [], {m: [] for m in cfg.report}
    for task, samples in sorted(res.get("samples", {}).items()):
        for s in samples:
            names.append(task)
            for m in cfg.report:
                v = s.get(m)
                if v is not None and not isinstance(v, bool | int | float):
                    raise BookmixError(f"{cfg.key}.report: {m!r} of {task} is not a number per sample ({type(v).__name__})")
                values[m].append(np.nan if v is None else float(v))
    out = TaskOutput(n_items=len(names), info={"harness": {t: {k: v for k, v in r.items() if "," in k}
                                                           for t, r in res.get("results", {}).items()}})
    task_arr = np.array(names, dtype=object)
    for m, hib in cfg.report.items():
        v = np.array(values[m], dtype=np.float64)
        present = np.isfinite(v)
        if not present.any():
            continue
        out.metrics[m] = MetricData.mean(np.nan_to_num(v), hib, mask=present)
        for t in sorted(set(names)):
            out.metrics[f"{m}@task={t}"] = MetricData.mean(np.nan_to_num(v), hib, mask=present & (task_arr == t))
    return out
