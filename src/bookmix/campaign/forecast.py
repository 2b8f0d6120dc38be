"""The campaign's forecast, made before any training: seconds per stage, the total, the user's time budget, warnings.

    plan = forecast_campaign(cfg, lib, model, recipes, store)    # after the library exists and round 0 is designed
    plan.total_seconds, plan.stages, plan.over_budget, plan.warnings

Each trial is forecast by ``bookmix.forecast.estimate`` from its recipe's exact token count (calibrated by
`bookmix bench` when a calibration exists, else the shipped defaults), with the campaign's own overheads: one worker
start-up per unit of ``executor.trials_per_unit`` trials, the held-out evaluation at the end of training, the eval suite's tokens,
one checkpoint. Stages:

- ``search``: round 0's trials exactly; later rounds as ``per_round`` recipes of round 0's mean size, and the
  out-of-sample trials as trials of the mean size;
- ``analysis``: the shipped default (a fixed part and a part per trial);
- ``verification``: (1 + baselines) × seeds trials of round 0's mean size;
- ``transfer``: ``recipes × seeds`` trials at each proxy setting and at the target, each at its own shape, training
  settings and token cap (the campaign's own proxy counted in full: trials it already has are not subtracted);
- ``dialogue``: ``top`` fine-tunings on the chat data (its tokens × epochs), each followed by the suite;
- ``report``: a fixed default.

Trials already completed (a resumed campaign) are left out: the forecast is of the work still to do. The runner
compares each stage with its measured wall time at the end (``CampaignSummary.stage_seconds``), so every campaign
tests its own forecast; ``bench/forecast_accuracy.py --campaign`` prints the ratios.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bookmix.config import PipelineConfig
from bookmix.forecast import defaults
from bookmix.forecast.units import human_seconds

STAGES = ("search", "analysis", "verification", "transfer", "dialogue", "report")
CHOICE_TOKENS = 4 * 64
"""A multiple-choice or minimal-pair item: about four candidates of ~64 tokens each, scored forward only."""


@dataclass(frozen=True)
class StageForecast:
    stage: str
    seconds: float
    trials: int = 0
    detail: str = ""


@dataclass
class CampaignPlan:
    """What ``bookmix run --plan`` prints and ``bookmix run`` checks before training."""

    stages: list[StageForecast]
    device: str
    calibrated: bool
    throughput_source: str
    tokens_per_s: float
    budget_seconds: float | None = None
    power: dict[str, Any] | None = None
    """With ``analysis.pilot``: the pilot's measured agreement projected onto this campaign (reliability.plan_from_pilot)."""
    warnings: list[str] = field(default_factory=list)
    """Said before any training (printed, logged, in --json). Add new checks in :func:`plan_warnings`."""

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def over_budget(self) -> bool:
        return self.budget_seconds is not None and self.total_seconds > self.budget_seconds

    def stage(self, name: str) -> StageForecast | None:
        return next((s for s in self.stages if s.stage == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [asdict(s) for s in self.stages],
            "total_seconds": self.total_seconds,
            "device": self.device,
            "calibrated": self.calibrated,
            "throughput_source": self.throughput_source,
            "tokens_per_s": self.tokens_per_s,
            "budget_seconds": self.budget_seconds,
            "over_budget": self.over_budget,
            "power": self.power,
            "warnings": self.warnings,
        }


def suite_tokens(suite, lib) -> int:
    """Tokens one evaluation of the suite reads (forward only), roughly: held-out text, items, generated samples."""
    n_holdout = len(lib.books(split="holdout"))
    total = 0
    for task in suite.tasks:
        if getattr(task, "type", "") == "heldout_loss":
            total += min(task.max_books, max(n_holdout, 1)) * task.tokens_per_book
        elif hasattr(task, "prompts"):  # samples: each new token re-reads the context (no KV cache)
            total += len(task.prompts) * task.max_new_tokens * 64
        else:
            items = getattr(task, "max_items", None) or getattr(task, "n_items", None) or 200
            total += int(items) * CHOICE_TOKENS
    return total


def _throughput_forecast(
    model: dict[str, Any], tokens: list[int], cfg: PipelineConfig, suite_tok: int, n_tasks: int, device: str
):
    from bookmix.forecast import Overheads, estimate, load_calibration
    from bookmix.models.config import ModelConfig

    mcfg = ModelConfig.from_dict(model)
    calib = load_calibration(device, mcfg.name) or load_calibration(device)
    overheads = Overheads(
        startup_s=0.0,  # counted once per unit below
        compile=bool(cfg.train.compile),
        evals=1,  # the trainer's held-out loss at the end (eval_every 0) ...
        eval_tokens=cfg.train.eval_windows * mcfg.block_size,
        suite_tokens=suite_tok,  # ... then the campaign's suite
        suite_tasks=n_tasks,
        checkpoints=1,
    )
    dtype = "fp32" if device == "cpu" else "bf16"
    return estimate(
        mcfg,
        tokens=tokens,
        device=device,
        calibration=calib,
        micro_batch=cfg.train.micro_batch,
        dtype=dtype,
        overheads=overheads,
    )


def _units(cfg: PipelineConfig) -> tuple[int, int]:
    """(trials per worker process, concurrent workers) as the executor will run them."""
    pack = cfg.executor.trials_per_unit if isinstance(cfg.executor.trials_per_unit, int) else 4
    workers = cfg.executor.workers or 1
    return pack, workers


def forecast_campaign(
    cfg: PipelineConfig,
    lib,
    model: dict[str, Any],
    recipes: list[dict[str, Any]],
    store=None,
    device: str | None = None,
) -> CampaignPlan:
    """Forecast the campaign's remaining stages (see the module docstring). Pure but for reading the calibration
    file, the store (what is done) and the library (token counts)."""
    from bookmix.campaign.plan import plan_search
    from bookmix.evals.suite import Suite
    from bookmix.forecast import detect_device
    from bookmix.recipes import Recipe

    device = device or detect_device()
    if "base" in model:  # fine-tune mode: a Hugging Face base, not one of our shapes
        plan = CampaignPlan([], device, False, "none", 0.0, budget_seconds=cfg.campaign.time_budget)
        plan.warnings = [
            "no forecast in fine-tune mode (model.hf_base): the forecaster knows bookmix's own model shapes only"
            + ("; campaign.time_budget cannot be checked" if cfg.campaign.time_budget is not None else "")
        ]
        return plan
    block = int(model["block_size"])
    cap = cfg.train.max_tokens or None  # the trainer stops there
    by_recipe = {}
    for r in recipes:
        n = int(Recipe.from_dict(r).stream(lib, block).total_tokens)
        by_recipe[r["id"]] = min(n, cap) if cap else n
    specs = plan_search(cfg, recipes, model, 0, cfg.library_dir)
    done_ids: set[str] = set()
    done_stages: set[str] = set()
    if store is not None:
        done_ids = {t["id"] for t in store.trials() if t["state"] in ("completed", "failed", "diverged")}
        done_stages = {n for n in ("analysis", "verification", "dialogue") if store.stage_done(n) is not None}
    todo = [by_recipe[s.recipe_id] for s in specs if s.trial_id not in done_ids]
    mean_tokens = max(1, round(sum(by_recipe.values()) / max(1, len(by_recipe))))
    trials_per_recipe = len(specs) / max(1, len(recipes))
    rounds_left = sum(
        1 for r in range(1, cfg.search.rounds) if store is None or store.stage_done(f"design:{r}") is None
    )
    later = round(cfg.search.per_round * trials_per_recipe) * rounds_left
    # out-of-sample trials (analysis.out_of_sample) train once each, like search trials of the mean size
    n_oos = cfg.analysis.out_of_sample if cfg.analysis.enabled else 0
    if store is not None and n_oos:
        n_oos = max(0, n_oos - sum(1 for t in store.trials() if t["stage"] == "oos" and t["id"] in done_ids))
    n_verify = (1 + cfg.verification.baselines) * cfg.verification.seeds if cfg.verification.enabled else 0
    if "verification" in done_stages:
        n_verify = 0

    suite = Suite.from_dict(cfg.eval.suite) if isinstance(cfg.eval.suite, dict) else Suite.load(cfg.suite_path)
    s_tok = suite_tokens(suite, lib)
    fc = _throughput_forecast(
        model, [*todo, mean_tokens] if todo else [mean_tokens], cfg, s_tok, len(suite.tasks), device
    )
    rows = fc.rows
    per_trial = [r.seconds for r in rows[: len(todo)]]
    mean_trial = rows[-1].seconds
    startup, _, compile_s = defaults.resolve_overheads(
        defaults.Overheads(compile=bool(cfg.train.compile)), device, int(model["n_layer"])
    )
    pack, workers = _units(cfg)

    def trials_s(seconds: list[float]) -> float:
        if not seconds:
            return 0.0
        units = math.ceil(len(seconds) / pack)
        return (units * (startup + compile_s) + sum(seconds)) / min(workers, units)

    stages = [
        StageForecast(
            "search",
            trials_s(per_trial + [mean_trial] * (later + n_oos)),
            len(per_trial) + later + n_oos,
            f"{len(per_trial)} round-0 trials ({sum(todo):,} tokens) + {later} in later rounds"
            + (f" + {n_oos} out of sample" if n_oos else ""),
        )
    ]
    if cfg.analysis.enabled and "analysis" not in done_stages:
        n = len(specs) + later
        stages.append(
            StageForecast(
                "analysis",
                defaults.ANALYSIS_FIXED_S + defaults.ANALYSIS_PER_TRIAL_S * n,
                0,
                f"default: {defaults.ANALYSIS_FIXED_S:g} s + {defaults.ANALYSIS_PER_TRIAL_S:g} s a trial",
            )
        )
    if n_verify:
        stages.append(
            StageForecast(
                "verification",
                trials_s([mean_trial] * n_verify),
                n_verify,
                f"{n_verify} trials of the mean recipe size",
            )
        )
    if cfg.transfer.enabled and (store is None or store.stage_done("transfer") is None):
        stages.append(_transfer_forecast(cfg, lib, mean_tokens, s_tok, len(suite.tasks), device, trials_s))
    if cfg.dialogue.enabled and "dialogue" not in done_stages:
        stages.append(_dialogue_forecast(cfg, lib, fc, s_tok, len(suite.tasks)))
    if cfg.report.enabled is not False:
        n = len(specs) + later + n_oos + n_verify
        report_s = defaults.REPORT_FIXED_S + defaults.REPORT_PER_TRIAL_S * n
        stages.append(StageForecast("report", report_s, 0, "default, by trials"))
    tp = fc.throughput
    plan = CampaignPlan(
        stages,
        device,
        tp.calibrated,
        tp.source,
        fc.assumptions["tokens_per_s"],
        budget_seconds=cfg.campaign.time_budget,
    )
    if cfg.analysis.enabled and cfg.analysis.pilot is not None:
        from bookmix.analysis.reliability import pilot_plan_for

        per_set = round(sum(len(r.get("books") or []) for r in recipes) / max(1, len(recipes)))
        plan.power = pilot_plan_for(cfg.resolve_path(cfg.analysis.pilot), len(specs) + later, [per_set],
                                    cfg.library_dir, where="analysis.pilot")  # fmt: skip
    plan.warnings = plan_warnings(cfg, plan)
    return plan


def _transfer_forecast(cfg: PipelineConfig, lib, mean_tokens: int, s_tok: int, n_tasks: int, device: str,
                       trials_s) -> StageForecast:  # fmt: skip
    """Every transfer arm's trials, each a trial of the mean recipe size at the arm's shape and token cap."""
    from bookmix.campaign.transfer import arm_setting, arms

    searched = sum(int(d.get("n", 1)) for d in cfg.search.designs) + cfg.search.per_round * (cfg.search.rounds - 1)
    n = min(cfg.transfer.recipes, max(1, searched))
    n_trials = n * len(cfg.transfer.seeds)
    seconds, parts = [], []
    for name, arm in arms(cfg):
        model, train = arm_setting(cfg, arm, lib.vocab_size, f"transfer ({name})")
        tokens = min(mean_tokens, train.max_tokens) if train.max_tokens else mean_tokens
        fc = _throughput_forecast(model, [tokens], cfg.model_copy(update={"train": train}), s_tok, n_tasks, device)
        seconds += [fc.rows[0].seconds] * n_trials
        parts.append(f"{name} {fc.rows[0].seconds:.3g} s")
    return StageForecast(
        "transfer",
        trials_s(seconds),
        len(seconds),
        f"{n} recipes × {len(cfg.transfer.seeds)} seeds at {len(parts)} settings ({', '.join(parts)} a trial)",
    )


def _dialogue_forecast(cfg: PipelineConfig, lib, fc, s_tok: int, n_tasks: int) -> StageForecast:
    """``top`` fine-tunings: the chat data's tokens × epochs at the training rate, then one suite evaluation each."""
    tokens = 0
    try:
        text = cfg.dialogue_data.read_text(encoding="utf-8")
        tokens = int(sum(len(ids) for ids in lib.encode([text])))
    except (OSError, ValueError):  # written by the library stage of a storyworld campaign: not there yet
        pass
    tps = fc.assumptions["tokens_per_s"]
    one = (
        tokens * cfg.dialogue.epochs * (1 - cfg.dialogue.heldout) / tps
        + s_tok / (3 * tps)
        + n_tasks * defaults.SUITE_TASK_S
    )
    return StageForecast(
        "dialogue",
        cfg.dialogue.top * one,
        0,
        f"{cfg.dialogue.top} fine-tunings of {tokens:,} chat tokens × {cfg.dialogue.epochs} epochs",
    )


def plan_warnings(cfg: PipelineConfig, plan: CampaignPlan) -> list[str]:
    """Everything a user should hear before the campaign trains. The time budget is checked here; further plan-time
    checks (e.g. a design whose effects fall below the noise floor) append their lines here too."""
    out = []
    if plan.over_budget:
        out.append(
            f"over budget: the forecast is {human_seconds(plan.total_seconds)}, campaign.time_budget is "
            f"{human_seconds(plan.budget_seconds or 0)}"
            + (
                ""
                if plan.calibrated
                else f" (uncalibrated defaults: `bookmix bench --model {cfg.model.preset}` measures this machine)"
            )
        )
    if plan.power is not None:
        lv = plan.power["levels"].get(plan.power.get("level") or "books") or {}
        if lv.get("agreement") is None or lv["agreement"] < LOW_AGREEMENT:
            out.append("below the noise floor: " + plan.power["sentence"])
    if cfg.analysis.enabled and cfg.seeds.replicates == 0:
        out.append("seeds.replicates is 0: no recipe is trained twice, so the analysis cannot measure the seed noise "
                   "its findings must beat")  # fmt: skip
    return out


# Below this expected rerun agreement a campaign's ranking is mostly noise: warned about before training.
LOW_AGREEMENT = 0.5


def format_plan(plan: CampaignPlan) -> list[str]:
    """Lines for the console: one per stage, the total, the budget."""
    lines = [f"  {s.stage:12s} {human_seconds(s.seconds):>10s}   {s.detail}" for s in plan.stages]
    budget = f" of a {human_seconds(plan.budget_seconds)} budget" if plan.budget_seconds is not None else ""
    lines.append(f"  {'total':12s} {human_seconds(plan.total_seconds):>10s}{budget}")
    lines.append(f"  on {plan.device} at {plan.tokens_per_s:,.0f} tokens/s ({plan.throughput_source})")
    if plan.power is not None:
        lines.append(f"  power: {plan.power['sentence']}")
    return lines
