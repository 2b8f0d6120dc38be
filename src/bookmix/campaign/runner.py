"""The stage runner: ``bookmix run pipeline.yaml``.

    library ─▶ search rounds (design → trials → train/eval) ─▶ analysis ─▶ verification ─▶ dialogue ─▶ report

Trials train a preset from scratch, or continue a Hugging Face base (``model.hf_base``: fine-tune mode); a unit of
same-shape trials may train as one packed model (``executor.packed``). The dialogue stage fine-tunes the top trials
on chat data (``bookmix.training.sft``).

Every stage is idempotent and records its completion in the results store, so killing the driver at any moment and
running the same command again picks up where it stopped: finished trials are skipped, interrupted ones resume from
their checkpoints, finished stages are not redone. A lock keeps a second driver off a running campaign.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bookmix.campaign.executors import make_executor
from bookmix.campaign.forecast import CampaignPlan, forecast_campaign, format_plan
from bookmix.campaign.lock import CampaignLock
from bookmix.campaign.plan import plan_out_of_sample, plan_search, plan_verification
from bookmix.campaign.progress import CampaignProgress
from bookmix.campaign.retention import apply_retention
from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.campaign.store import ANALYSED_STAGES, DB, HOLDOUT_STAGES, Store
from bookmix.campaign.trackers import Trackers
from bookmix.config import PipelineConfig
from bookmix.errors import BookmixError, ConfigError, field_error
from bookmix.utils.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from bookmix.evals.suite import Suite

LOG = "campaign.log"


@dataclass
class CampaignSummary:
    campaign_dir: Path
    counts: dict[str, int]
    seconds: float
    findings: Path | None = None
    verification: Path | None = None
    report: Path | None = None
    notes: list[str] = field(default_factory=list)
    dialogue: Path | None = None
    plan: CampaignPlan | None = None
    """The forecast made before training (``campaign.forecast``); None if it could not be made."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Measured wall time of each stage run in this session (the library stage, then those the plan forecasts)."""
    planned_only: bool = False
    """``bookmix run --plan``: the library and round 0's recipes are ready, nothing was trained."""
    transfer: Path | None = None
    """transfer.json of the transfer stage (``transfer.enabled``)."""

    def forecast_vs_actual(self) -> list[dict[str, Any]]:
        """One row per forecast stage, with the measured seconds and forecast ÷ actual where both exist."""
        if self.plan is None or self.planned_only or not self.plan.stages:
            return []
        rows = []
        for s in self.plan.stages:
            actual = self.stage_seconds.get(s.stage)
            ratio = s.seconds / actual if actual else None
            rows.append({"stage": s.stage, "forecast_s": round(s.seconds, 2),
                         "actual_s": None if actual is None else round(actual, 2),
                         "ratio": None if ratio is None else round(ratio, 3)})
        actual = sum(self.stage_seconds.get(s.stage, 0.0) for s in self.plan.stages)
        rows.append({"stage": "total", "forecast_s": round(self.plan.total_seconds, 2), "actual_s": round(actual, 2),
                     "ratio": round(self.plan.total_seconds / actual, 3) if actual else None})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": str(self.campaign_dir),
            "trials": self.counts,
            "seconds": round(self.seconds, 2),
            "findings": str(self.findings) if self.findings else None,
            "verification": str(self.verification) if self.verification else None,
            "report": str(self.report) if self.report else None,
            "dialogue": str(self.dialogue) if self.dialogue else None,
            "transfer": str(self.transfer) if self.transfer else None,
            "notes": self.notes,
            "plan": self.plan.to_dict() if self.plan else None,
            "planned_only": self.planned_only,
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "forecast_vs_actual": self.forecast_vs_actual(),
        }


# ---- checks before any work ----------------------------------------------------------------------------------------
def report_available() -> bool:
    try:
        from bookmix.report import build_report  # noqa: F401
    except ImportError:
        return False
    return True


def check_probe_shelf(suite, shelf) -> None:  # noqa: ANN001 - Suite, ProbeShelf | None
    """Probe tasks must ask about the shelf the recipes read (``exclude`` aside), or they measure nothing."""
    for i, task in enumerate(suite.tasks):
        if task.type != "probe_shelf":
            continue
        asked = task.shelf.model_copy(update={"exclude": []})
        read = shelf.model_copy(update={"exclude": []}) if shelf is not None else None
        if read is None or asked.model_dump(exclude={"share"}) != read.model_dump(exclude={"share"}):
            raise ConfigError(
                f"eval.suite: tasks[{i}] ({task.key}) asks about a probe shelf {asked.model_dump(exclude={'exclude'})}"
                f" but search.probe_shelf is {read.model_dump(exclude={'exclude'}) if read else 'not set'}; "
                "give both the same settings (langs, seed, books, people, tokens_per_book)")


def preflight(cfg: PipelineConfig) -> Suite:
    """Everything that can be checked before any work: enabled stages exist, the suite parses (returned), the
    library is there."""
    from bookmix.evals.suite import Suite

    suite = Suite.from_dict(cfg.eval.suite) if isinstance(cfg.eval.suite, dict) else Suite.load(cfg.suite_path)
    check_probe_shelf(suite, cfg.search.probe_shelf)
    if cfg.analysis.enabled:
        try:
            from bookmix.analysis import analyze  # noqa: F401
        except ImportError:
            raise ConfigError(
                "analysis.enabled: the analysis (bookmix.analysis.analyze) is not available in this install; "
                "set analysis.enabled: false"
            ) from None
    if cfg.report.enabled is True and not report_available():
        raise ConfigError(
            "report.enabled: the report (bookmix.report.build_report) is not available in this install; "
            "set report.enabled: auto or false"
        )
    if cfg.library.storyworld is None:
        from bookmix.library import Library

        Library.open(cfg.library_dir)
    if cfg.model.hf_base is not None:
        from bookmix.training.finetune import base_context

        try:
            base_context(cfg.resolve_path(cfg.model.hf_base))
        except BookmixError as exc:
            raise ConfigError(f"model.hf_base: {exc}") from None
    if cfg.dialogue.enabled and cfg.dialogue.data is not None:
        from bookmix.models.chat import read_chat_file

        if not cfg.dialogue_data.is_file():
            raise ConfigError(f"dialogue.data: {cfg.dialogue_data}: file not found")
        read_chat_file(cfg.dialogue_data)  # a file with nothing usable fails now, not after the search
    return suite


def _logger(campaign_dir: Path) -> tuple[logging.Logger, logging.Handler]:
    log = logging.getLogger(f"bookmix.campaign.{campaign_dir}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(campaign_dir / LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log, handler


# ---- stages ---------------------------------------------------------------------------------------------------------
def prepare_library(cfg: PipelineConfig, store: Store, log: logging.Logger) -> Path:
    """The library the campaign reads: the given one, or a storyworld generated and ingested into the campaign."""
    lib_dir = cfg.library_dir
    sw = cfg.library.storyworld
    if sw is None or store.stage_done("library") is not None:
        return lib_dir
    from bookmix.library import ingest
    from bookmix.storyworld import generate

    world = cfg.campaign_dir / "storyworld"
    log.info("generating a storyworld of %d books (seed %d) in %s", sw.books, sw.seed, world)
    generate(world, books=sw.books, seed=sw.seed, **sw.options)
    holdout_file = world / "holdout.txt"
    log.info("ingesting it into %s", lib_dir)
    report = ingest(
        [world / "books"],
        lib_dir,
        tokenizer=cfg.library.tokenizer,
        holdout=None if holdout_file.exists() else cfg.library.holdout,
        holdout_books=holdout_file if holdout_file.exists() else None,
        metadata=[world / "metadata.csv"],
        seed=sw.seed,
    )
    store.finish_stage("library", {"path": str(lib_dir), "report": _plain(report)})
    return lib_dir


def _plain(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return {k: v for k, v in dataclasses.asdict(obj).items() if isinstance(v, int | float | str | bool | None)}
    return None


def design_round(cfg: PipelineConfig, lib, store: Store, round: int) -> list[dict[str, Any]]:
    """The recipes of a search round, made once and stored (a resumed campaign reuses them, never re-draws)."""
    from bookmix.campaign.designs import initial_recipes, next_round_recipes, with_shelf

    name = f"design:{round}"
    done = store.stage_done(name)
    if done is not None:
        if round == 0 and done.get("designs", cfg.search.designs) != cfg.search.designs:
            raise ConfigError(
                f"search.designs: changed since {cfg.campaign_dir} drew its recipes; "
                "start a new campaign (campaign.out) or restore the designs"
            )
        shelf = cfg.search.probe_shelf.model_dump(mode="json") if cfg.search.probe_shelf is not None else None
        if done.get("probe_shelf") != shelf:
            raise ConfigError(f"search.probe_shelf: changed since {cfg.campaign_dir} drew its recipes; start a new "
                              "campaign (campaign.out) or restore the shelf settings")
        return store.recipes(round)
    if round == 0:
        recipes = initial_recipes(cfg.search.designs, lib)
    else:
        best_ids: list[str] = []
        for t in store.ranked():
            if t["recipe_id"] not in best_ids:
                best_ids.append(t["recipe_id"])
        by_id = {r["id"]: r for r in store.recipes()}
        parents = [by_id[i] for i in best_ids[: cfg.selection.top_k] if i in by_id]
        if not parents:
            raise BookmixError(f"search round {round}: no completed trial of earlier rounds to build on")
        records = store.records(ANALYSED_STAGES)
        recipes = next_round_recipes(records, parents, cfg.search.per_round, lib, seed=round, use_analysis=cfg.analysis.enabled)
    recipes = with_shelf(recipes, cfg.search.probe_shelf)
    store.add_recipes(recipes, round)
    info: dict[str, Any] = {"recipes": [r["id"] for r in recipes]}
    if round == 0:
        info["designs"] = cfg.search.designs
    if cfg.search.probe_shelf is not None:
        info["probe_shelf"] = cfg.search.probe_shelf.model_dump(mode="json")
    store.finish_stage(name, info)
    return recipes


def run_trials(executor, store: Store, specs: list[TrialSpec], progress: CampaignProgress) -> None:
    store.add_trials(specs)
    progress.add(specs, store)
    executor.run(specs)


def out_of_sample_stage(
    cfg: PipelineConfig, lib, store: Store, executor, progress: CampaignProgress, model: dict
) -> None:
    """Train ``analysis.out_of_sample`` fresh recipes that the analysis will predict but never fit."""
    from bookmix.campaign.designs import out_of_sample_recipes, with_shelf

    n = cfg.analysis.out_of_sample
    if n <= 0:
        return
    round = cfg.search.rounds
    name = "oos:recipes"
    if store.stage_done(name) is None:
        recipes = out_of_sample_recipes(cfg.search.designs, n, lib, {r["id"] for r in store.recipes()})
        recipes = with_shelf(recipes, cfg.search.probe_shelf)  # read like the search recipes, shelf included
        store.add_recipes(recipes, round, design="oos")
        store.finish_stage(name, {"recipes": [r["id"] for r in recipes]})
    by_id = {r["id"]: r for r in store.recipes()}
    recipes = [by_id[i] for i in store.stage_done(name)["recipes"]]
    run_trials(executor, store, plan_out_of_sample(cfg, recipes, model, round, cfg.library_dir), progress)


def analysis_stage(cfg: PipelineConfig, lib, store: Store, log: logging.Logger) -> tuple[Path, dict | None]:
    """Analyse every completed search trial (and predict the out-of-sample ones); returns findings.json and the
    proposed recipe (a dict) if any."""
    out = cfg.campaign_dir / "findings.json"
    records = store.records(ANALYSED_STAGES)
    holdout = store.records(HOLDOUT_STAGES)
    trials = sorted(r["trial_id"] for r in records + holdout)
    done = store.stage_done("analysis")
    if done is not None and out.exists() and done.get("trials") == trials:
        return out, done.get("proposal")  # the same trials as last time: the findings stand
    from bookmix.analysis import analyze

    if not records:
        raise BookmixError(f"{cfg.campaign_dir}: no completed trial to analyse (see `bookmix status` for failures)")
    log.info("analysing %d trials (%d out of sample)", len(records), len(holdout))
    objective = store.objective(required=True)
    options = cfg.analysis.options.model_copy(update={"objective_weights": objective.get("weights")})
    findings = analyze(records, lib, options, holdout=holdout or None)
    data = findings.to_dict()
    maximize = objective["maximize"]
    data["objective_orientation"] = "as measured" if maximize else "negated (the suite minimises; higher is better here)"
    atomic_write_json(out, data)
    proposal = (data.get("proposal") or {}).get("recipe")
    store.finish_stage("analysis", {"proposal": proposal, "trials": trials})
    return out, proposal


def verification_stage(
    cfg: PipelineConfig, lib, store: Store, executor, progress: CampaignProgress, model: dict, proposal: dict | None
) -> Path | None:
    """Train the proposal against R random baselines over S seeds, then compare them (``verify_stats``)."""
    from bookmix.campaign.designs import baseline_recipes, with_shelf

    if proposal is None:
        raise BookmixError("verification: the analysis made no proposal to verify")
    round = cfg.search.rounds
    name = "verify:recipes"
    if store.stage_done(name) is None:
        baselines = baseline_recipes(proposal, cfg.verification.baselines, lib, seed=cfg.seeds.seeds[0])
        proposal, *baselines = with_shelf([proposal, *baselines], cfg.search.probe_shelf)
        store.add_recipes([proposal, *baselines], round, design="verify")
        store.finish_stage(name, {"proposal": proposal["id"], "baselines": [b["id"] for b in baselines]})
    info = store.stage_done(name)
    by_id = {r["id"]: r for r in store.recipes()}
    baselines = [by_id[i] for i in info["baselines"]]
    specs = plan_verification(cfg, by_id[info["proposal"]], baselines, model, round, cfg.library_dir)
    run_trials(executor, store, specs, progress)

    from bookmix.analysis.verify import verify_sentence, verify_stats

    ids = {s.trial_id: s.recipe_id for s in specs}
    # by id, not by stage: a proposal that equals a searched recipe reuses that trial for its first seed
    records = [r for r in store.records() if r["trial_id"] in ids]
    prop = [r["objective"] for r in records if r["recipe"]["id"] == info["proposal"]]
    base: dict[str, list[float]] = {}
    for r in records:
        if r["recipe"]["id"] != info["proposal"]:
            base.setdefault(r["recipe"]["id"], []).append(r["objective"])
    if not prop or not base:
        raise BookmixError("verification: the proposal or every baseline failed to train; see `bookmix status`")
    stats = verify_stats(prop, base, seed=cfg.seeds.seeds[0])  # the recipe is the unit: seeds averaged first
    out = cfg.campaign_dir / "verification.json"
    atomic_write_json(out, {"proposal": info["proposal"], "baselines": info["baselines"], **stats,
                            "sentence": verify_sentence(stats)})
    store.finish_stage("verification", {})
    return out


def dialogue_stage(cfg: PipelineConfig, store: Store, log: logging.Logger, notes: list[str]) -> Path | None:
    """A dialogue (SFT) layer on the ``dialogue.top`` best trials that still have their weights, each into
    ``<campaign>/dialogue/<trial id>/`` (recorded as the trial's ``dialogue`` artifact, where the report looks), all
    summed up in ``<campaign>/dialogue/dialogue.json``. Resumable: finished layers are read back, an interrupted one
    continues from its checkpoint; the same top trials as last time means nothing to do."""
    if not cfg.dialogue.enabled:
        return None
    out_root = cfg.campaign_dir / "dialogue"
    out = out_root / "dialogue.json"
    trials_dir = cfg.campaign_dir / "trials"
    top = [t["id"] for t in store.ranked() if (trials_dir / t["id"] / "checkpoint").is_dir()][: cfg.dialogue.top]
    done = store.stage_done("dialogue")
    if done is not None and done.get("trials") == top and out.exists():
        return out
    if not top:
        msg = "dialogue: skipped, no completed trial has its weights (see `bookmix status` for failures)"
        log.warning(msg)
        notes.append(msg)
        return None
    from bookmix.training.config import SFTConfig
    from bookmix.training.sft import dialogue_layer

    defaults = SFTConfig()
    scfg = SFTConfig(
        epochs=cfg.dialogue.epochs,
        heldout_fraction=cfg.dialogue.heldout,
        train=defaults.train.model_copy(update={"lr": cfg.dialogue.lr, "device": cfg.train.device, "seed": cfg.seeds.seeds[0]}),
    )
    log.info("dialogue layer on %d trial(s): %s", len(top), ", ".join(top))
    results = dialogue_layer([trials_dir / t for t in top], cfg.dialogue_data, cfg.library_dir, out_root, scfg,
                             suite=cfg.suite_path)
    runs = {}
    for tid, r in zip(top, results, strict=True):
        store.add_artifact(tid, "dialogue", r.out_dir)
        runs[tid] = {"heldout_loss_before": r.heldout_loss_before, "heldout_loss_after": r.heldout_loss_after,
                     "objective": r.objective}
        log.info("dialogue %s: held-out chat loss %.4g -> %.4g, objective %s", tid, r.heldout_loss_before or float("nan"),
                 r.heldout_loss_after or float("nan"), r.objective)
    store.finish_stage("dialogue", {"trials": top, "runs": runs})
    return out


def report_stage(cfg: PipelineConfig, log: logging.Logger, notes: list[str]) -> Path | None:
    if cfg.report.enabled is False:
        return None
    if not report_available():
        msg = "report: skipped, the report module (bookmix.report.build_report) is not installed yet"
        log.warning(msg)
        notes.append(msg)
        return None
    from bookmix.report import build_report

    out = cfg.campaign_dir / cfg.report.path
    build_report(cfg.campaign_dir, out)
    return out


# ---- the driver ----------------------------------------------------------------------------------------------------
def run_campaign(
    cfg: PipelineConfig,
    executor: str | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    show_progress: bool = True,
    plan_only: bool = False,
    force: bool = False,
) -> CampaignSummary:
    """Run (or resume) the campaign a pipeline describes. Raises BookmixError before any work when something is off.

    Before training, the remaining stages are forecast (``campaign.forecast``): logged, returned in the summary, and
    checked against ``campaign.time_budget``; a forecast over the budget refuses to start unless ``force``. With
    ``plan_only`` the run stops there: the library is ready and round 0 designed (both stored, so the real run reuses
    them), nothing is trained."""
    t0 = time.time()
    objective = preflight(cfg).objective
    kind = executor or cfg.executor.kind
    campaign_dir = cfg.campaign_dir
    campaign_dir.mkdir(parents=True, exist_ok=True)
    with CampaignLock(campaign_dir):
        cfg.write_inline_suite()
        log, handler = _logger(campaign_dir)
        store = Store(campaign_dir / DB)
        trackers = None
        try:  # the objective is recorded once, before anything else: what "best" means for this campaign for good
            store.record_objective(objective.weights, objective.direction)
            atomic_write_text(campaign_dir / "pipeline.yaml", yaml.safe_dump(cfg.resolved(), sort_keys=False))
            interrupted = store.reset_interrupted()
            if interrupted:
                log.info("resuming: %d interrupted trial(s) continue from their checkpoints", interrupted)
            if retry_failed:
                retried = store.reset_failed()
                clear_for_retry(campaign_dir, retried)
                log.info("--retry-failed: %d failed trial(s) queued again", len(retried))
            log.info("campaign %s in %s (executor %s)", cfg.campaign.name, campaign_dir, kind)

            from bookmix.library import Library

            stage_seconds: dict[str, float] = {}
            t_stage = time.time()
            lib_dir = prepare_library(cfg, store, log)
            stage_seconds["library"] = time.time() - t_stage
            lib = Library.open(lib_dir)
            model = cfg.trial_model(lib.vocab_size)
            if cfg.model.hf_base is not None:  # a base that cannot read the library's token ids fails before any work
                from bookmix.training.finetune import check_tokenizer

                check_tokenizer(Path(model["base"]), lib)

            t_stage = time.time()
            recipes0 = design_round(cfg, lib, store, 0)
            plan = forecast_campaign(cfg, lib, model, recipes0, store)
            design_s = time.time() - t_stage  # designing round 0 belongs to the search stage
            for line in format_plan(plan):
                log.info("forecast:%s", line)
            for warning in plan.warnings:
                log.warning("plan: %s", warning)
            if plan_only:
                return CampaignSummary(campaign_dir, store.counts(), time.time() - t0, plan=plan, planned_only=True,
                                       stage_seconds=stage_seconds)
            if plan.over_budget and not force:
                raise BookmixError(
                    f"{cfg.source or 'pipeline'}: campaign.time_budget: {plan.warnings[0]}; nothing was trained. "
                    "Shrink the campaign (fewer recipes, seeds or rounds, a smaller model), raise the budget, or run "
                    "with --force to start anyway (`bookmix run PIPELINE --plan` shows the forecast by stage)"
                )
            if show_progress:
                from bookmix.utils.console import console

                for warning in plan.warnings:
                    console.print(f"[yellow]plan: {warning}[/]")

            trackers = Trackers(cfg.trackers, campaign_dir, cfg.campaign.name, log)
            progress = CampaignProgress(cfg, model, lib, enabled=show_progress, forecast_total=plan.total_seconds if plan.stages else None)

            def on_result(spec: TrialSpec, res: TrialResult) -> None:
                trackers.log_trial(spec, res)
                progress.done(spec, res)

            ex = make_executor(kind, store, cfg.executor, log, on_result, address=address)
            notes: list[str] = []
            with progress:
                t_stage = time.time() - design_s
                for r in range(cfg.search.rounds):
                    recipes = design_round(cfg, lib, store, r)
                    run_trials(ex, store, plan_search(cfg, recipes, model, r, lib_dir), progress)
                    _retain(cfg, store, log)
                if cfg.analysis.enabled:  # out-of-sample trials train like search trials: timed with the search
                    out_of_sample_stage(cfg, lib, store, ex, progress, model)
                stage_seconds["search"] = time.time() - t_stage
                findings = proposal = None
                if cfg.analysis.enabled:
                    t_stage = time.time()
                    findings, proposal = analysis_stage(cfg, lib, store, log)
                    stage_seconds["analysis"] = time.time() - t_stage
                verification = None
                if cfg.verification.enabled:
                    t_stage = time.time()
                    verification = verification_stage(cfg, lib, store, ex, progress, model, proposal)
                    _retain(cfg, store, log)
                    stage_seconds["verification"] = time.time() - t_stage
                transfer = None
                if cfg.transfer.enabled:  # after the analysis: it re-trains the campaign's ranked recipes larger
                    from bookmix.campaign.transfer import transfer_stage

                    t_stage = time.time()
                    transfer = transfer_stage(cfg, lib, store, ex, progress, log, run_trials)
                    _retain(cfg, store, log)
                    stage_seconds["transfer"] = time.time() - t_stage
                t_stage = time.time()
                dialogue = dialogue_stage(cfg, store, log, notes)
                if cfg.dialogue.enabled:
                    stage_seconds["dialogue"] = time.time() - t_stage
                t_stage = time.time()
                report = report_stage(cfg, log, notes)
                if cfg.report.enabled is not False:
                    stage_seconds["report"] = time.time() - t_stage
                progress.finish()
            counts = store.counts()
            log.info("campaign finished: %s", counts)
            summary = CampaignSummary(campaign_dir, counts, time.time() - t0, findings, verification, report, notes,
                                      dialogue, plan=plan, stage_seconds=stage_seconds, transfer=transfer)
            for row in summary.forecast_vs_actual():
                log.info("forecast vs actual: %s %s s forecast, %s s measured, ratio %s", row["stage"],
                         row["forecast_s"], row["actual_s"], row["ratio"])
            atomic_write_json(campaign_dir / "forecast.json", {"plan": plan.to_dict(), "stage_seconds": stage_seconds,
                                                               "forecast_vs_actual": summary.forecast_vs_actual()})
            return summary
        finally:
            if trackers is not None:
                trackers.close()
            store.close()
            log.removeHandler(handler)
            handler.close()


def clear_for_retry(campaign_dir: Path, trials: list[dict[str, Any]]) -> None:
    """Before a retry: drop the recorded outcome; a diverged run also starts over (resuming it from its last
    checkpoint would only diverge again), a crashed one continues from its checkpoint."""
    import contextlib
    import shutil

    for t in trials:
        folder = campaign_dir / "trials" / t["id"]
        if t["state"] == "diverged":
            shutil.rmtree(folder, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                (folder / "trial.json").unlink()


def _retain(cfg: PipelineConfig, store: Store, log: logging.Logger) -> None:
    if cfg.selection.keep_weights == "all":
        return
    gone = apply_retention(store, cfg.campaign_dir, cfg.selection.top_k)
    if gone:
        log.info("retention: deleted the weights of %d trial(s) outside the top %d", len(gone), cfg.selection.top_k)


def run_transfer(campaign: str | Path, show_progress: bool = True, executor: str | None = None,
                 **overrides: Any) -> Path:  # fmt: skip
    """`bookmix transfer CAMPAIGN`: the transfer stage on a finished campaign, with its stored pipeline and the
    ``transfer`` settings given as keyword overrides (recipes, seeds, target, proxies, ...)."""
    from bookmix.campaign.store import open_campaign
    from bookmix.campaign.transfer import transfer_stage
    from bookmix.config import TransferSection, load_pipeline
    from bookmix.library import Library

    campaign = Path(campaign)
    if not (campaign / DB).is_file() or not (campaign / "pipeline.yaml").is_file():
        raise BookmixError(f"{campaign}: not a campaign folder (no {DB} and pipeline.yaml)")
    open_campaign(campaign).close()  # an older campaign gets its objective recorded once, from its suite
    cfg = load_pipeline(campaign / "pipeline.yaml")
    from pydantic import ValidationError

    try:
        section = TransferSection.model_validate({**cfg.transfer.model_dump(), **overrides, "enabled": True})
    except ValidationError as exc:
        raise ConfigError(field_error(exc, "transfer")) from None
    cfg.transfer = section
    with CampaignLock(campaign):
        log, handler = _logger(campaign)
        store = Store(campaign / DB)
        try:
            lib = Library.open(cfg.library_dir)
            model = cfg.trial_model(lib.vocab_size)
            progress = CampaignProgress(cfg, model, lib, enabled=show_progress)
            ex = make_executor(executor or cfg.executor.kind, store, cfg.executor, log,
                               lambda spec, res: progress.done(spec, res))  # fmt: skip
            with progress:
                out = transfer_stage(cfg, lib, store, ex, progress, log, run_trials)
                progress.finish()
            _retain(cfg, store, log)
            return out
        finally:
            store.close()
            log.removeHandler(handler)
            handler.close()
