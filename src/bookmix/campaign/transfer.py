"""The transfer stage: re-train some of the campaign's recipes at a larger target and compare rankings.

    bookmix run PIPELINE            # with transfer.enabled: after the analysis (and verification)
    bookmix transfer CAMPAIGN       # on a finished campaign

Chosen recipes (``choose_recipes``): the proposal, the top and bottom quarter of the campaign's ranking, random ones
from the rest. Every one trains at each *arm*, over ``transfer.seeds``: the campaign's own setting (the proxy), each
extra proxy of ``transfer.proxies``, and the target. A trial whose id the campaign already has (same recipe, model,
training and seed) is reused, not trained again. Trials get stage ``transfer`` so the analysis, the top list and
retention's keep set leave them out. The comparison is ``bookmix.analysis.transfer``; the result is
``<campaign>/transfer.json``, its summary is added to findings.json, and each clear finding there is labelled with
whether it kept its sign at the target.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from bookmix.campaign.spec import TrialSpec
from bookmix.campaign.store import Store
from bookmix.config import PipelineConfig, TransferArm
from bookmix.errors import BookmixError, ConfigError, field_error
from bookmix.utils.io import atomic_write_json

STAGE = "transfer"
OUT = "transfer.json"
TRANSFER_ROUND = 10_000
"""Round number of transfer trials: apart from every search round."""


def arm_name(arm: TransferArm, cfg: PipelineConfig) -> str:
    if arm.name:
        return arm.name
    parts = [arm.preset or cfg.model.preset]
    parts += [f"{k}={v}" for k, v in sorted(arm.overrides.items())]
    parts += [f"{k}={v}" for k, v in sorted(arm.train.items())]
    return " ".join(parts)


def arms(cfg: PipelineConfig) -> list[tuple[str, TransferArm]]:
    """(name, arm) of every proxy, the campaign's own setting first, then the target last."""
    t = cfg.transfer
    own = TransferArm(name="campaign", preset=cfg.model.preset, overrides=dict(cfg.model.overrides))
    out = [("campaign", own)] + [(arm_name(p, cfg), p) for p in t.proxies] + [("target", t.target)]
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"transfer.proxies: two settings are both named {dup[0]!r}; give each a distinct name")
    return out


def arm_setting(cfg: PipelineConfig, arm: TransferArm, vocab_size: int, where: str) -> tuple[dict[str, Any], Any]:
    """(model dict, TrainConfig) of an arm; an unknown preset or a bad field fails naming ``where``."""
    from pydantic import ValidationError

    from bookmix.config import ModelSection
    from bookmix.training.config import TrainConfig

    preset = arm.preset or cfg.model.preset
    overrides = arm.overrides if arm.preset else {**cfg.model.overrides, **arm.overrides}
    try:
        model = ModelSection(preset=preset, overrides=overrides).resolve(vocab_size).to_dict()
    except ValidationError as exc:
        raise ConfigError(field_error(exc, where)) from None
    except (ValueError, TypeError, BookmixError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        train = TrainConfig.model_validate({**cfg.train.model_dump(), **arm.train})
    except ValidationError as exc:
        raise ConfigError(field_error(exc, f"{where}.train")) from None
    return model, train


def choose_recipes(ranked_ids: list[str], n: int, proposal: str | None, seed: int = 0) -> list[tuple[str, str]]:
    """(recipe id, role) of the transferred recipes: the proposal, the top and bottom n/4 of ``ranked_ids`` (best
    first), then random ones of the rest, n in all (all of them when fewer)."""
    chosen: list[tuple[str, str]] = []
    if proposal is not None:
        chosen.append((proposal, "proposal"))
    rest = [r for r in ranked_ids if r != proposal]
    room = max(0, n - len(chosen))
    if len(rest) <= room:
        k = len(rest) // 4
        return chosen + [
            (r, "top" if i < k else "bottom" if i >= len(rest) - k else "random") for i, r in enumerate(rest)
        ]
    q = room // 4
    top, bottom, middle = rest[:q], rest[len(rest) - q :], rest[q : len(rest) - q]
    rng = np.random.default_rng(seed)
    pick = sorted(rng.choice(len(middle), room - 2 * q, replace=False).tolist())
    chosen += [(r, "top") for r in top] + [(r, "bottom") for r in bottom] + [(middle[i], "random") for i in pick]
    return chosen


def plan_transfer(cfg: PipelineConfig, recipes: list[dict[str, Any]], vocab_size: int) -> dict[str, list[TrialSpec]]:
    """Every chosen recipe × seed at every arm (stage ``transfer``), keyed by arm name."""
    from bookmix.campaign.plan import make_spec

    out: dict[str, list[TrialSpec]] = {}
    for i, (name, arm) in enumerate(arms(cfg)):
        where = (
            "transfer.target" if name == "target" else "model" if name == "campaign" else f"transfer.proxies[{i - 1}]"
        )
        model, train = arm_setting(cfg, arm, vocab_size, where)
        arm_cfg = cfg.model_copy(update={"train": train})
        out[name] = [make_spec(arm_cfg, r, model, s, STAGE, TRANSFER_ROUND, cfg.library_dir)
                     for r in recipes for s in cfg.transfer.seeds]  # fmt: skip
    return out


def _ranking(records: list[dict[str, Any]]) -> list[str]:
    """Recipe ids by mean (oriented) objective over their search trials, best first."""
    by: dict[str, list[float]] = {}
    for r in records:
        by.setdefault(r["recipe"]["id"], []).append(r["objective"])
    return sorted(by, key=lambda k: -float(np.mean(by[k])))


def arm_cost(spec: TrialSpec) -> float:
    """Training FLOPs of one trial, about: 6·N·D from the model shape and the token cap (or one pass of the
    recipe's books when uncapped, counted as 1 token: only the ratio between arms matters)."""
    from bookmix.models.config import ModelConfig

    m = ModelConfig.from_dict(spec.model)
    return float(m.flops_per_token()) * float(spec.train.get("max_tokens") or 1)


def transfer_stage(
    cfg: PipelineConfig, lib, store: Store, executor, progress, log: logging.Logger, run_trials
) -> Path:  # noqa: ANN001 - the runner's objects; fmt: skip
    """Choose, train, compare; writes ``<campaign>/transfer.json`` and labels findings.json. Resumable."""
    from bookmix.analysis.transfer import TransferRow, compare_proxies, summary_sentence, transfer_report

    t = cfg.transfer
    name = "transfer:recipes"
    search = store.records(("search", "replicate"))
    if store.stage_done(name) is None:
        if not search:
            raise BookmixError(f"{cfg.campaign_dir}: transfer: no completed search trial to transfer "
                               "(see `bookmix status`)")  # fmt: skip
        analysis = store.stage_done("analysis") or {}
        proposal = analysis.get("proposal")
        if proposal is not None:  # read the probe shelf like every recipe of the campaign (as verification does)
            from bookmix.campaign.designs import with_shelf

            proposal = with_shelf([proposal], cfg.search.probe_shelf)[0]
        by_id = {r["id"]: r for r in store.recipes()}
        if proposal is not None and proposal.get("id") not in by_id:
            store.add_recipes([proposal], TRANSFER_ROUND, design="transfer")
        chosen = choose_recipes(_ranking(search), t.recipes, (proposal or {}).get("id"), seed=cfg.seeds.seeds[0])
        store.finish_stage(name, {"recipes": [r for r, _ in chosen], "roles": dict(chosen)})
    info = store.stage_done(name)
    by_id = {r["id"]: r for r in store.recipes()}
    recipes = [by_id[i] for i in info["recipes"]]
    plans = plan_transfer(cfg, recipes, lib.vocab_size)
    specs = [s for arm_specs in plans.values() for s in arm_specs]
    log.info(
        "transfer: %d recipes × %d seeds at %d settings (%d trials)", len(recipes), len(t.seeds), len(plans), len(specs)
    )
    run_trials(executor, store, specs, progress)

    scores = {r["trial_id"]: r["objective"] for r in store.records()}

    def arm_scores(arm: str) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for s in plans[arm]:
            if s.trial_id in scores:
                out.setdefault(s.recipe_id, []).append(scores[s.trial_id])
        return out

    target = arm_scores("target")
    if len(target) < 3:
        raise BookmixError(f"transfer: only {len(target)} recipe(s) trained at the target; see `bookmix status`")
    findings_path = cfg.campaign_dir / "findings.json"
    found = _read_json(findings_path) if findings_path.exists() else None
    at_target = _target_findings(cfg, lib, store, plans["target"], log) if found else None
    reports, sentences, costs = {}, [], {}
    for arm in plans:
        if arm == "target":
            continue
        proxy = arm_scores(arm)
        rows = [TransferRow(rid, proxy[rid], target[rid], info["roles"].get(rid, "")) for rid in info["recipes"]
                if rid in proxy and rid in target]  # fmt: skip
        if len(rows) < 3:
            log.warning("transfer: proxy %s has fewer than 3 recipes trained at both sizes; skipped", arm)
            continue
        reports[arm] = transfer_report(rows, proposal=next((r for r, role in info["roles"].items() if role == "proposal"),
                                       None), found=found if arm == "campaign" else None,
                                       at_target=at_target if arm == "campaign" else None, seed=cfg.seeds.seeds[0],
                                       min_spearman=t.min_spearman, min_accuracy=t.min_accuracy)  # fmt: skip
        costs[arm] = arm_cost(plans[arm][0])
        sentences.append(summary_sentence(arm, reports[arm], arm_name(t.target, cfg)))
    if not reports:
        raise BookmixError("transfer: no proxy has enough recipes trained at both sizes; see `bookmix status`")
    best = compare_proxies(reports, costs)
    if len(reports) > 1:
        sentences.append(f"Best proxy: {best['why']}.")
    data = {"target": {"name": arm_name(t.target, cfg), "model": plans["target"][0].model,
                       "train": plans["target"][0].train},
            "seeds": t.seeds, "recipes": info["recipes"], "roles": info["roles"],
            "proxies": {a: {"model": plans[a][0].model, "train": plans[a][0].train, "cost": costs[a],
                            **reports[a].to_dict()} for a in reports},
            "best": best, "summary": sentences,
            "thresholds": {"min_spearman": t.min_spearman, "min_accuracy": t.min_accuracy}}  # fmt: skip
    out = cfg.campaign_dir / OUT
    atomic_write_json(out, data)
    if found is not None:
        label_findings(findings_path, data)
    for s in sentences:
        log.info("transfer: %s", s)
    store.finish_stage(STAGE, {"trials": sorted(s.trial_id for s in specs)})
    return out


def _read_json(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _target_findings(cfg: PipelineConfig, lib, store: Store, specs: list[TrialSpec],
                     log: logging.Logger) -> dict[str, Any] | None:  # fmt: skip
    """The same analysis fitted on the target's trials alone (no reliability splits, no proposal): the effects each
    campaign finding is checked against. None (logged) when those few trials cannot be analysed."""
    from bookmix.analysis import AnalysisConfig, analyze

    ids = {s.trial_id for s in specs}
    records = [r for r in store.records() if r["trial_id"] in ids]
    try:
        f = analyze(records, lib, AnalysisConfig(splits=0, propose=False, seed=cfg.seeds.seeds[0]))
    except (ValueError, BookmixError, np.linalg.LinAlgError) as exc:
        log.warning("transfer: the target's trials could not be analysed (%s); findings are left unlabelled", exc)
        return None
    d = f.to_dict()
    return {"books": d["books"], "groups": d["groups"], "factors": d["factors"]}


def label_findings(path: Path, transfer: dict[str, Any]) -> None:
    """Mark each checked finding in findings.json with ``transfer: kept | reversed | unmeasured`` and add the
    transfer summary (idempotent: running it again rewrites the same labels)."""
    data = _read_json(path)
    own = transfer["proxies"].get("campaign") or {}
    status = {(f["kind"], f["name"]): f["status"] for f in own.get("findings", [])}
    keys = {"books": ("book", "book"), "top_books": ("book", "book"), "bottom_books": ("book", "book"),
            "groups": ("group", "group"), "factors": ("factor", "factor")}  # fmt: skip
    for section, (kind, key) in keys.items():
        for row in data.get(section) or []:
            st = status.get((kind, str(row.get(key))))
            if st is not None:
                row["transfer"] = st
    summary = [s for s in data.get("summary", []) if not s.startswith("Transfer: ")]
    summary += [f"Transfer: {s}" for s in transfer["summary"]]
    reversed_ = [f"{k} {n}" for (k, n), st in status.items() if st == "reversed"]
    if reversed_:
        summary.append(
            f"Transfer: {len(reversed_)} finding(s) did not transfer (reversed at the target): "
            + ", ".join(reversed_[:8])
            + ("…" if len(reversed_) > 8 else "")
            + "."
        )
    data["summary"] = summary
    data["transfer"] = {"verdict": own.get("verdict"), "spearman": own.get("spearman"), "accuracy": own.get("accuracy"),
                        "best": transfer["best"]["best"], "summary": transfer["summary"]}  # fmt: skip
    atomic_write_json(path, data)
