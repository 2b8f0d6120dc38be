"""Everything the dashboard shows, as one JSON-ready payload: ``collect(campaign_dir)``.

    payload = collect("campaigns/demo")     # reads the results store read-only: safe while the campaign runs

The IO edge of the report: it opens the campaign's results store (read-only, WAL readers never block the driver),
reads findings.json / verification.json / the trials' eval.json samples, and hands plain rows to the pure pieces
(leaderboard, curve thinning, forecast table). When the analysis stage has not written findings.json yet, the
findings are computed here from the finished trials, so a live campaign shows its patterns as they form.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from bookmix.campaign.store import DB, Store, load_campaign, objective_weights, open_campaign
from bookmix.errors import BookmixError
from bookmix.report.downsample import MAX_POINTS, downsample
from bookmix.report.forecast_table import DEVICES, forecast_table
from bookmix.report.leaderboard import leaderboard
from bookmix.utils.io import read_yaml

PAYLOAD_VERSION = 1

CURVE_NAMES = ("loss", "heldout_loss")
"""The curves worth drawing: training loss and held-out loss. lr, grad_norm and throughput stay in the store."""

TOP_SAMPLES = 5
"""Samples are shown for the best few trials: people read a handful of generations, not a thousand."""

MIN_TRIALS_TO_ANALYZE = 4
"""Below four finished trials an effect estimate is all noise; the findings section says so instead."""

MAX_TITLES = 20_000
"""Book titles embedded for the leaderboard's detail view; a campaign over more books keeps the commonest books'."""

ERROR_CHARS = 300
"""A failed trial's message is cut to 300 characters on the page; the whole traceback stays in its error.log."""


# ---- the campaign's settings -------------------------------------------------------------------------------------
def _pipeline(campaign_dir: Path) -> dict[str, Any]:
    path = campaign_dir / "pipeline.yaml"
    data = read_yaml(path) if path.exists() else None
    return data if isinstance(data, dict) else {}


def objective_of(store: Store) -> dict[str, Any]:
    """{label, direction, maximize, known} of the objective the campaign recorded when it started."""
    recorded = store.objective()
    if recorded is None:  # an older campaign whose suite cannot be read: shown as measured, said to be unknown
        return {"label": "objective", "direction": "unknown", "maximize": True, "known": False}
    return {
        "label": recorded["name"],
        "direction": recorded["direction"],
        "maximize": recorded["maximize"],
        "known": True,
    }


# ---- pieces read from the store ----------------------------------------------------------------------------------
def _trial_rows(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("id", "recipe_id", "seed", "stage", "round", "state", "device", "objective", "objective_stderr", "tokens",
            "train_seconds", "eval_seconds", "started_at", "finished_at", "attempts")  # fmt: skip
    rows = []
    for t in trials:
        row = {k: _num(t.get(k)) if isinstance(t.get(k), float) else t.get(k) for k in keys}
        row["error"] = (t.get("error") or "")[:ERROR_CHARS] or None
        rows.append(row)
    return rows


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def read_curves(
    store: Store, trial_ids: list[str] | None = None, names: tuple[str, ...] = CURVE_NAMES, max_points: int = MAX_POINTS
) -> dict[str, dict]:
    """trial id → {curve name → {"x": tokens (or steps), "y": values, "x_is": "tokens"|"step"}}, thinned.

    Every trial's curves, or only those of ``trial_ids``.
    """
    rows = store.curve_rows(names, trial_ids)
    if not rows:
        return {}
    trial = np.array([r[0] for r in rows], dtype=object)
    name = np.array([r[1] for r in rows], dtype=object)
    step = np.array([r[2] for r in rows], dtype=np.float64)
    tokens = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
    value = np.array([np.nan if r[4] is None else r[4] for r in rows], dtype=np.float64)
    # Segment boundaries: where (trial, name) changes; rows come sorted, so each segment is one curve.
    change = np.flatnonzero((trial[1:] != trial[:-1]) | (name[1:] != name[:-1])) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(rows)]])
    out: dict[str, dict] = {}
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        tok = tokens[s:e]
        use_tokens = bool(np.all(np.isfinite(tok)))
        x, y = downsample(tok if use_tokens else step[s:e], value[s:e], max_points)
        out.setdefault(str(trial[s]), {})[str(name[s])] = {"x": x, "y": y, "x_is": "tokens" if use_tokens else "step"}
    return out


def cached_curves(
    store: Store, trials: list[dict[str, Any]], cache: dict[str, tuple] | None, max_points: int = MAX_POINTS
) -> dict[str, dict]:
    """Curves of every trial, re-reading only what may have changed since ``cache`` was filled (None: no cache).

    A finished trial's curves never change, so the live server reads each one once; trials still pending or
    running, and any whose state or finish time moved (a retry), are read again.
    """
    if cache is None:
        return read_curves(store, max_points=max_points)
    key = {str(t["id"]): (t["state"], t["finished_at"], max_points) for t in trials}
    stale = [tid for tid, k in key.items() if tid not in cache or cache[tid][0] != k or k[0] in ("pending", "running")]
    fresh = read_curves(store, trial_ids=stale, max_points=max_points) if stale else {}
    for tid in stale:
        cache[tid] = (key[tid], fresh.get(tid))
    for tid in [t for t in cache if t not in key]:
        del cache[tid]
    return {tid: cache[tid][1] for tid in key if cache[tid][1]}


def _trial_folder(campaign_dir: Path, trial: dict[str, Any]) -> Path:
    """The trial's folder: the campaign's own trials/<id> (right for a moved or copied campaign), else the spec's
    out_dir (a cluster run may keep trials on a shared path elsewhere)."""
    local = campaign_dir / "trials" / str(trial["id"])
    if local.is_dir():
        return local
    try:
        return Path(json.loads(trial["spec"]).get("out_dir") or local)
    except (ValueError, TypeError):
        return local


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_samples(campaign_dir: Path, trials: list[dict[str, Any]], artifacts: dict[str, dict[str, str]],
                 maximize: bool, top: int = TOP_SAMPLES) -> list[dict[str, Any]]:  # fmt: skip
    """Generations of the ``top`` best trials, one per recipe (so that the samples show different training sets),
    from their eval.json; with a dialogue layer, its samples too.

    A dialogue layer is found as the trial's ``dialogue`` artifact (a folder holding an eval.json) or as
    ``<trial>/dialogue/eval.json``.
    """
    done = [t for t in trials if t["state"] == "completed" and t["objective"] is not None]
    done.sort(key=lambda t: t["objective"], reverse=maximize)
    out, seen = [], set()
    for t in done:
        if t["recipe_id"] in seen:
            continue
        folder = _trial_folder(campaign_dir, t)
        ev = _read_json(folder / "eval.json") or {}
        dialogue_dir = Path(artifacts.get(t["id"], {}).get("dialogue") or folder / "dialogue")
        dev = _read_json(dialogue_dir / "eval.json") or {}
        samples, dialogue = ev.get("samples") or [], dev.get("samples") or []
        if not samples and not dialogue:
            continue
        seen.add(t["recipe_id"])
        out.append({"trial_id": t["id"], "recipe_id": t["recipe_id"], "objective": t["objective"],
                    "samples": samples, "dialogue": dialogue})  # fmt: skip
        if len(out) >= top:
            break
    return out


def read_titles(library_path: str | None, book_ids: list[str]) -> dict[str, str]:
    """Book id → title from the campaign's library (empty when the library has moved or is unreadable)."""
    if not library_path or not book_ids or not Path(library_path).is_dir():
        return {}
    from bookmix.library import Library

    try:
        lib = Library.open(library_path)
        titles: dict[str, str] = {}
        for i in range(0, len(book_ids), 500):  # SQLite caps bound parameters; ids are hex, safe to inline
            chunk = [b for b in book_ids[i : i + 500] if all(c in "0123456789abcdef" for c in b)]
            if not chunk:
                continue
            where = "id IN (" + ",".join(f"'{b}'" for b in chunk) + ")"
            table = lib.table(columns=["id", "title"], where=where)
            titles.update(zip(table["id"].tolist(), [str(x or "") for x in table["title"].tolist()], strict=True))
        return titles
    except BookmixError:
        return {}


def intern_books(board: list[dict[str, Any]]) -> list[str]:
    """Replace the book ids of every leaderboard row (and its phases) by indices into the returned id list.

    1000 recipes of 100 books would repeat 16-character ids 100,000 times (2 MB); indices take a quarter of that.
    The list is ordered by how many recipes read each book, so the commonest books get the short indices.
    """
    counts: dict[str, int] = {}
    for row in board:
        for b in row["books"]:
            counts[b] = counts.get(b, 0) + 1
    ids = sorted(counts, key=lambda b: (-counts[b], b))
    index = {b: i for i, b in enumerate(ids)}
    for row in board:
        row["books"] = [index[b] for b in row["books"]]
        for ph in row["phases"] or ():
            ph["books"] = [index[b] for b in ph["books"] if b in index]
    return ids


# ---- findings, verification, forecast ----------------------------------------------------------------------------
def read_findings(campaign_dir: Path, analyze: bool, n_completed_search: int) -> tuple[dict | None, str, str | None]:
    """(findings dict, source, note). findings.json from the analysis stage wins; else computed now if allowed."""
    path = campaign_dir / "findings.json"
    saved = _read_json(path) if path.exists() else None
    if isinstance(saved, dict):
        return saved, "findings.json", None
    if not analyze:
        return None, "none", "findings: not computed (analysis switched off for this report)"
    if n_completed_search < MIN_TRIALS_TO_ANALYZE:
        return (
            None,
            "none",
            (
                f"findings: {n_completed_search} finished search trial(s); the analysis needs at least "
                f"{MIN_TRIALS_TO_ANALYZE} to say anything"
            ),
        )
    try:
        from bookmix.analysis import AnalysisConfig
        from bookmix.analysis import analyze as run_analysis
    except ImportError:
        return None, "none", "findings: the analysis is not installed (pip install 'bookmix[analysis]')"
    try:
        records, _, library = load_campaign(campaign_dir)
        # 100 bootstrap draws (not the analysis stage's 200): a live view is refreshed often and its intervals
        # are provisional anyway; the analysis stage's findings.json replaces them when it runs.
        config = AnalysisConfig(n_boot=100, propose=True, objective_weights=objective_weights(campaign_dir))
        findings = run_analysis(records, library, config).to_dict()
    except (BookmixError, ValueError, np.linalg.LinAlgError) as exc:
        return None, "none", f"findings: the analysis could not run on these trials ({exc})".splitlines()[0]
    return findings, "computed", "findings computed from the trials finished so far (no findings.json yet)"


def verify_points(trials: list[dict[str, Any]], verification: dict | None, maximize: bool) -> dict[str, Any] | None:
    """Objectives of the verification trials, split into the proposal's and the baselines'."""
    if not verification or not verification.get("proposal"):
        return None
    vt = [t for t in trials if t["stage"] == "verify" and t["state"] == "completed" and t["objective"] is not None]
    prop = verification["proposal"]
    return {
        "proposal": [{"trial_id": t["id"], "objective": t["objective"]} for t in vt if t["recipe_id"] == prop],
        "baselines": [
            {"trial_id": t["id"], "recipe_id": t["recipe_id"], "objective": t["objective"]}
            for t in vt
            if t["recipe_id"] != prop
        ],
        "maximize": maximize,
    }


def _forecast(
    model: dict | None, trials: list[dict[str, Any]], counts: dict[str, int]
) -> tuple[dict | None, str | None]:
    if not model:
        return None, "forecast: no trial planned yet, so the model shape is unknown"
    from bookmix.forecast import load_calibration

    tokens = [t["tokens"] for t in trials if t["state"] == "completed" and t["tokens"]]
    if tokens:
        per_trial = int(np.median(tokens))
    else:
        try:
            per_trial = int(json.loads(trials[0]["spec"]).get("train", {}).get("max_tokens") or 0)
        except (ValueError, TypeError):
            per_trial = 0
    if per_trial <= 0:
        return None, "forecast: no trial has finished yet and the training budget is not fixed, so tokens are unknown"
    preset = str(model.get("name") or "")
    devices = list(DEVICES)
    calibrations = {d: load_calibration(d, preset) or load_calibration(d) for d in devices}
    cpu = load_calibration("cpu", preset)
    if cpu:
        devices.append("cpu")
        calibrations["cpu"] = cpu
    remaining = counts.get("pending", 0) + counts.get("running", 0)
    total = sum(counts.values())
    try:
        return forecast_table(model, per_trial, total, remaining, calibrations, devices), None
    except BookmixError as exc:
        return None, f"forecast: {exc}"


def overview(trials: list[dict[str, Any]], counts: dict[str, int], model: dict | None, workers: int,
             forecast: dict | None) -> dict[str, Any]:  # fmt: skip
    """Counts, compute used so far and what remains (measured seconds per trial, else the forecast's)."""
    done = [t for t in trials if t["state"] in ("completed", "diverged") and t["train_seconds"]]
    train_s = float(sum(t["train_seconds"] or 0 for t in trials))
    eval_s = float(sum(t["eval_seconds"] or 0 for t in trials))
    tokens = int(sum(t["tokens"] or 0 for t in trials))
    flops = None
    if model:
        from bookmix.models.config import ModelConfig

        try:
            flops = float(tokens) * ModelConfig.from_dict(model).flops_per_token()
        except (BookmixError, TypeError):
            flops = None
    remaining = counts.get("pending", 0) + counts.get("running", 0)
    per_trial, source = None, None
    if done:
        per_trial = float(np.mean([(t["train_seconds"] or 0) + (t["eval_seconds"] or 0) for t in done]))
        source = f"measured: mean of {len(done)} finished trial(s)"
    elif forecast and forecast["rows"] and "trial_seconds" in forecast["rows"][0]:
        per_trial = float(forecast["rows"][0]["trial_seconds"])
        source = f"forecast on {forecast['rows'][0]['device']}"
    return {
        "counts": counts,
        "total": int(sum(counts.values())),
        "finished": counts.get("completed", 0) + counts.get("failed", 0) + counts.get("diverged", 0),
        "compute": {"train_seconds": train_s, "eval_seconds": eval_s, "tokens": tokens, "flops": flops},
        "remaining": {
            "trials": remaining,
            "seconds_per_trial": per_trial,
            "source": source,
            "workers": workers,
            "eta_seconds": None if per_trial is None else remaining * per_trial / max(1, workers),
        },
    }


# ---- the payload ---------------------------------------------------------------------------------------------------
def fingerprint(campaign_dir: str | Path) -> str:
    """Changes whenever the results store or a stage's output changes: the live server's cache key."""
    campaign_dir = Path(campaign_dir)
    parts = []
    for name in (DB, DB + "-wal", "findings.json", "verification.json", "transfer.json", "pipeline.yaml"):
        try:
            st = (campaign_dir / name).stat()
            parts.append(f"{name}:{st.st_mtime_ns}:{st.st_size}")
        except FileNotFoundError:
            parts.append(f"{name}:-")
    return "|".join(parts)


def collect(
    campaign_dir: str | Path,
    analyze: bool = True,
    max_curve_points: int = MAX_POINTS,
    curve_cache: dict[str, tuple] | None = None,
) -> dict[str, Any]:
    """The dashboard's payload for a campaign folder (a BookmixError naming the folder when it is not one).

    ``analyze``: compute the findings when the analysis stage has not written findings.json. ``curve_cache``: a
    dict kept between calls (the live server's) so that finished trials' curves are read only once.
    """
    from bookmix.campaign.lock import is_running

    campaign_dir = Path(campaign_dir)
    with open_campaign(campaign_dir) as store:  # a BookmixError naming the folder when it is not a campaign
        token = fingerprint(campaign_dir)
        objective = objective_of(store)
        trials = store.trials()
        counts = store.counts()
        recipes = {r["id"]: r for r in store.recipes() if "id" in r}
        stages = store.stages()
        curves = cached_curves(store, trials, curve_cache, max_curve_points)
        artifacts = store.all_artifacts()
    pipeline = _pipeline(campaign_dir)

    first_spec = json.loads(trials[0]["spec"]) if trials else {}
    for t in trials:  # a trial's recipe is in its spec even when the recipes table lacks it (hand-added trials)
        if t["recipe_id"] not in recipes:
            recipes[t["recipe_id"]] = json.loads(t["spec"]).get("recipe") or {}
    # transfer trials train other model sizes: their objectives do not rank against the campaign's
    board = leaderboard([t for t in trials if t["stage"] != "transfer"], recipes, objective["maximize"])
    model = first_spec.get("model")
    workers = int((pipeline.get("executor") or {}).get("workers") or 1)
    forecast, forecast_note = _forecast(model, trials, counts)
    n_search = sum(1 for t in trials if t["state"] == "completed" and t["stage"] in ("search", "replicate"))
    findings, findings_source, findings_note = read_findings(campaign_dir, analyze, n_search)
    verification = _read_json(campaign_dir / "verification.json")
    verification = verification if isinstance(verification, dict) else None

    book_ids = intern_books(board)
    titles = read_titles(first_spec.get("library"), book_ids[:MAX_TITLES])

    notes = [n for n in (forecast_note, findings_note) if n]
    return {
        "version": PAYLOAD_VERSION,
        "generated_at": time.time(),
        "token": token,
        "campaign": {
            "name": (pipeline.get("campaign") or {}).get("name") or campaign_dir.name,
            "path": str(campaign_dir.resolve()),
            "running": is_running(campaign_dir),
            "stages": stages,
            "objective": objective,
            "model": model,
            "library": first_spec.get("library"),
        },
        "overview": overview(trials, counts, model, workers, forecast),
        "trials": _trial_rows(trials),
        "leaderboard": board,
        "curves": curves,
        "book_ids": book_ids,
        "book_titles": [titles.get(b, "") for b in book_ids],
        "findings": findings,
        "findings_source": findings_source,
        "proposal": (findings or {}).get("proposal"),
        "verification": verification,
        "verify_points": verify_points(trials, verification, objective["maximize"]),
        "transfer": transfer if isinstance(transfer := _read_json(campaign_dir / "transfer.json"), dict) else None,
        "forecast": forecast,
        "samples": read_samples(campaign_dir, trials, artifacts, objective["maximize"]),
        "notes": notes,
    }
