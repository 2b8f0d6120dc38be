"""The results store: one SQLite file (WAL) per campaign, written only by the driver, and the campaign's read side.

Tables: recipes, trials (state machine pending → running → completed | failed | diverged), metrics with standard
errors, curves, artifacts, stages (which whole stages are done, for resume) and meta (the objective's name and
direction, recorded when the campaign starts). Recording a result is one transaction keyed by trial id, so a result
recorded twice (a resume racing a late worker) still appears once.

Everything that reads a campaign (status, the analysis' loader, the report) reads it through here: ``open_campaign``
(read-only, safe while the driver runs), ``records()`` (objectives oriented higher-is-better by the recorded
direction, so a suite file moved after the campaign changes nothing), ``stages()``, ``all_artifacts()``,
``curve_rows()`` and ``library_path()``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bookmix.campaign.spec import STATES, TrialResult, TrialSpec
from bookmix.errors import BookmixError, ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS recipes (
    id TEXT PRIMARY KEY, round INTEGER NOT NULL, design TEXT, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id TEXT PRIMARY KEY, recipe_id TEXT NOT NULL, seed INTEGER NOT NULL, stage TEXT NOT NULL, round INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', device TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL, started_at REAL, finished_at REAL, train_seconds REAL, eval_seconds REAL,
    tokens INTEGER, objective REAL, objective_stderr REAL, error TEXT, weights_kept INTEGER NOT NULL DEFAULT 1,
    spec TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trials_state ON trials(state);
CREATE TABLE IF NOT EXISTS metrics (
    trial_id TEXT NOT NULL, name TEXT NOT NULL, value REAL, stderr REAL, PRIMARY KEY (trial_id, name)
);
CREATE TABLE IF NOT EXISTS curves (
    trial_id TEXT NOT NULL, name TEXT NOT NULL, step INTEGER NOT NULL, tokens INTEGER, value REAL,
    PRIMARY KEY (trial_id, name, step)
);
CREATE TABLE IF NOT EXISTS artifacts (
    trial_id TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL, PRIMARY KEY (trial_id, kind)
);
CREATE TABLE IF NOT EXISTS stages (
    name TEXT PRIMARY KEY, finished_at REAL, info TEXT
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY, value TEXT NOT NULL
);
"""

DB = "campaign.sqlite"
"""The results database's name inside a campaign folder."""

ANALYSED_STAGES = ("search", "replicate")
"""The stages whose trials describe the recipe space; verification trials compare one proposal with baselines and
would bias the book effects towards the proposal's books."""
HOLDOUT_STAGES = ("oos",)
"""Trained like search trials but never fitted: the analysis predicts them (the out-of-sample check)."""


class Store:
    """The campaign's results database. Open it read-only (``readonly=True``) from anything but the driver."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise BookmixError(f"{self.path}: no results database (is this a campaign folder?)")
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
            # WAL: readers (status, the dashboard) never block the driver; synchronous=NORMAL is durable across a
            # process kill (only an OS crash can lose the last commits, which are then re-run, never duplicated).
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
            self.conn.commit()
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- recipes and trials ----------------------------------------------------------------------------------
    def add_recipes(self, recipes: Iterable[dict[str, Any]], round: int, design: str | None = None) -> None:
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO recipes(id, round, design, body) VALUES (?, ?, ?, ?)",
                [(r["id"], round, design, json.dumps(r, sort_keys=True)) for r in recipes],
            )

    def recipes(self, round: int | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT body FROM recipes", ()
        if round is not None:
            q, args = q + " WHERE round = ?", (round,)
        return [json.loads(r["body"]) for r in self.conn.execute(q + " ORDER BY rowid", args)]

    def add_trials(self, specs: Iterable[TrialSpec]) -> int:
        """Insert planned trials; ones already known (same id) are left as they are. Returns how many were new."""
        now = time.time()
        rows = [
            (s.trial_id, s.recipe_id, s.seed, s.stage, s.round, now, json.dumps(s.to_dict(), sort_keys=True))
            for s in specs
        ]
        with self.conn:
            before = self.conn.total_changes
            self.conn.executemany(
                "INSERT OR IGNORE INTO trials(id, recipe_id, seed, stage, round, created_at, spec) VALUES (?,?,?,?,?,?,?)",
                rows,
            )
            return self.conn.total_changes - before

    def specs(self, state: str | None = None, ids: Iterable[str] | None = None) -> list[TrialSpec]:
        q, args = "SELECT spec FROM trials", []
        where = []
        if state is not None:
            where.append("state = ?")
            args.append(state)
        if ids is not None:
            ids = list(ids)
            where.append(f"id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        if where:
            q += " WHERE " + " AND ".join(where)
        return [TrialSpec.from_dict(json.loads(r["spec"])) for r in self.conn.execute(q + " ORDER BY rowid", args)]

    def trial(self, trial_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return dict(row) if row else None

    def trials(self, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        if ids is None:
            return [dict(r) for r in self.conn.execute("SELECT * FROM trials ORDER BY rowid")]
        ids = list(ids)
        q = f"SELECT * FROM trials WHERE id IN ({','.join('?' * len(ids))}) ORDER BY rowid"
        return [dict(r) for r in self.conn.execute(q, ids)]

    def mark_running(self, trial_ids: Iterable[str], device: str = "") -> None:
        now = time.time()
        with self.conn:
            self.conn.executemany(
                "UPDATE trials SET state='running', device=?, started_at=?, attempts=attempts+1 WHERE id=?",
                [(device, now, t) for t in trial_ids],
            )

    def reset_interrupted(self) -> int:
        """Trials left 'running' by a killed driver go back to pending (their checkpoints let them continue)."""
        with self.conn:
            return self.conn.execute("UPDATE trials SET state='pending' WHERE state='running'").rowcount

    def reset_failed(self) -> list[dict[str, Any]]:
        """``--retry-failed``: failed and diverged trials become pending again (with fresh retries); returns them."""
        rows = [dict(r) for r in self.conn.execute("SELECT * FROM trials WHERE state IN ('failed', 'diverged')")]
        with self.conn:
            self.conn.execute(
                "UPDATE trials SET state='pending', error=NULL, attempts=0 WHERE state IN ('failed', 'diverged')"
            )
        return rows

    def record(self, result: TrialResult) -> None:
        """Store one trial's outcome atomically (state, metrics, curves, artifacts), replacing any earlier copy."""
        if result.state not in STATES:
            raise ValueError(f"unknown trial state {result.state!r}")
        t = result.trial_id
        with self.conn:
            self.conn.execute(
                "UPDATE trials SET state=?, device=?, finished_at=?, train_seconds=?, eval_seconds=?, tokens=?,"
                " objective=?, objective_stderr=?, error=? WHERE id=?",
                (
                    result.state,
                    result.device,
                    time.time(),
                    result.train_seconds,
                    result.eval_seconds,
                    result.tokens,
                    result.objective,
                    result.objective_stderr,
                    result.error,
                    t,
                ),
            )
            self.conn.execute("DELETE FROM metrics WHERE trial_id=?", (t,))
            self.conn.executemany(
                "INSERT INTO metrics(trial_id, name, value, stderr) VALUES (?,?,?,?)",
                [(t, name, m.get("value"), m.get("stderr")) for name, m in result.metrics.items()],
            )
            self.conn.execute("DELETE FROM curves WHERE trial_id=?", (t,))
            self.conn.executemany(
                "INSERT OR REPLACE INTO curves(trial_id, name, step, tokens, value) VALUES (?,?,?,?,?)",
                [(t, c["name"], int(c["step"]), c.get("tokens"), c.get("value")) for c in result.curves],
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO artifacts(trial_id, kind, path) VALUES (?,?,?)",
                [(t, k, p) for k, p in result.artifacts.items()],
            )

    def add_artifact(self, trial_id: str, kind: str, path: str | Path) -> None:
        """Record one more file or folder of a trial made after its result (e.g. its dialogue layer)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO artifacts(trial_id, kind, path) VALUES (?,?,?)", (trial_id, kind, str(path))
            )

    def set_weights_deleted(self, trial_ids: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany("UPDATE trials SET weights_kept=0 WHERE id=?", [(t,) for t in trial_ids])

    # ---- reads -------------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for row in self.conn.execute("SELECT state, COUNT(*) AS n FROM trials GROUP BY state"):
            counts[row["state"]] = row["n"]
        return counts

    def metrics(self, trial_id: str) -> dict[str, dict[str, float | None]]:
        rows = self.conn.execute("SELECT name, value, stderr FROM metrics WHERE trial_id=? ORDER BY name", (trial_id,))
        return {r["name"]: {"value": r["value"], "stderr": r["stderr"]} for r in rows}

    def all_metrics(self) -> dict[str, dict[str, float | None]]:
        """trial id → {metric name → value} for every trial with metrics."""
        out: dict[str, dict[str, float | None]] = {}
        for r in self.conn.execute("SELECT trial_id, name, value FROM metrics"):
            out.setdefault(r["trial_id"], {})[r["name"]] = r["value"]
        return out

    def curves(self, trial_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT name, step, tokens, value FROM curves WHERE trial_id=? ORDER BY name, step", (trial_id,)
        )
        return [dict(r) for r in rows]

    def artifacts(self, trial_id: str) -> dict[str, str]:
        rows = self.conn.execute("SELECT kind, path FROM artifacts WHERE trial_id=?", (trial_id,))
        return {r["kind"]: r["path"] for r in rows}

    def all_artifacts(self) -> dict[str, dict[str, str]]:
        """trial id → {kind → path} for every trial with artifacts."""
        out: dict[str, dict[str, str]] = {}
        for r in self.conn.execute("SELECT trial_id, kind, path FROM artifacts"):
            out.setdefault(r["trial_id"], {})[r["kind"]] = r["path"]
        return out

    def curve_rows(self, names: Iterable[str], trial_ids: Iterable[str] | None = None) -> list[tuple]:
        """(trial_id, name, step, tokens, value) of the named curves, sorted by trial, name and step; plain tuples
        (a sqlite3.Row per point costs seconds over a 1000-trial campaign)."""
        names = tuple(names)
        cur = self.conn.cursor()
        cur.row_factory = None
        sql = f"SELECT trial_id, name, step, tokens, value FROM curves WHERE name IN ({','.join('?' * len(names))})"
        order = " ORDER BY trial_id, name, step"
        if trial_ids is None:
            return cur.execute(sql + order, names).fetchall()
        ids, rows = list(trial_ids), []
        for i in range(0, len(ids), 500):  # SQLite caps bound parameters; each chunk holds whole trials
            chunk = ids[i : i + 500]
            rows += cur.execute(
                sql + f" AND trial_id IN ({','.join('?' * len(chunk))})" + order, (*names, *chunk)
            ).fetchall()
        return rows

    def library_path(self) -> str | None:
        """The library the campaign's trials read (from the first trial's spec); None before any trial is planned."""
        row = self.conn.execute("SELECT spec FROM trials ORDER BY rowid LIMIT 1").fetchone()
        return json.loads(row["spec"]).get("library") if row else None

    def records(self, stages: Iterable[str] | None = None, oriented: bool = True) -> list[dict[str, Any]]:
        """Completed trials as the plain dicts the analysis reads: {trial_id, recipe, seed, stage, round, objective,
        objective_stderr, metrics: {name: value}}. ``oriented``: objectives turned higher-is-better by the direction
        recorded when the campaign started (losses negated), trials without an objective left out."""
        stages = None if stages is None else set(stages)
        negate = oriented and not self.objective(required=True)["maximize"]
        recipes = {r["id"]: r for r in self.recipes()}
        metrics = self.all_metrics()
        out = []
        for t in self.conn.execute("SELECT * FROM trials WHERE state='completed' ORDER BY rowid"):
            if (stages is not None and t["stage"] not in stages) or (oriented and t["objective"] is None):
                continue
            objective = t["objective"]
            out.append(
                {
                    "trial_id": t["id"],
                    "recipe": recipes.get(t["recipe_id"]) or json.loads(t["spec"])["recipe"],
                    "seed": t["seed"],
                    "stage": t["stage"],
                    "round": t["round"],
                    "objective": -objective if negate and objective is not None else objective,
                    "objective_stderr": t["objective_stderr"],
                    "metrics": metrics.get(t["id"], {}),
                }
            )
        return out

    def ranked(self) -> list[dict[str, Any]]:
        """Completed trials with an objective, best first by the campaign's recorded direction. Transfer trials are
        left out: they train other model sizes, whose objectives are not comparable with the campaign's."""
        rows = [t for t in self.trials()
                if t["state"] == "completed" and t["objective"] is not None and t["stage"] != "transfer"]  # fmt: skip
        return sorted(rows, key=lambda t: t["objective"], reverse=self.objective(required=True)["maximize"])

    # ---- the objective -----------------------------------------------------------------------------------------
    def objective(self, required: bool = False) -> dict[str, Any] | None:
        """{name, direction, weights, maximize} of the objective recorded when the campaign started; None (or, ``required``,
        a BookmixError) when none is recorded."""
        try:
            row = self.conn.execute("SELECT value FROM meta WHERE key='objective'").fetchone()
        except sqlite3.OperationalError:  # a read-only database from before the meta table
            row = None
        if row is None:
            if required:
                raise BookmixError(
                    f"{self.path}: the campaign's objective is not recorded and its suite cannot be "
                    "read (its direction decides which trials are best)"
                )
            return None
        value = json.loads(row["value"])
        return {**value, "maximize": value["direction"] == "maximize"}

    def record_objective(self, weights: dict[str, float], direction: str) -> None:
        """Record the objective (metric → weight, direction) when the campaign starts; a resumed campaign must rank
        by the same one."""
        name = objective_name(weights)
        known = self.objective()
        if known is None:
            with self.conn:
                value = {"name": name, "direction": direction, "weights": dict(weights)}
                self.conn.execute("INSERT INTO meta(key, value) VALUES ('objective', ?)", (json.dumps(value),))
        elif (known["name"], known["direction"]) != (name, direction):
            raise ConfigError(
                f"eval.suite: the objective is {name} ({direction}) but {self.path.parent} started with "
                f"{known['name']} ({known['direction']}); restore the suite's objective or start a new "
                "campaign (campaign.out)"
            )

    # ---- stages ------------------------------------------------------------------------------------------------
    def stage_done(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT info FROM stages WHERE name=?", (name,)).fetchone()
        return json.loads(row["info"] or "{}") if row else None

    def stages(self) -> list[str]:
        """Names of the finished stages, in the order they finished."""
        return [r["name"] for r in self.conn.execute("SELECT name FROM stages ORDER BY finished_at")]

    def finish_stage(self, name: str, info: dict[str, Any] | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO stages(name, finished_at, info) VALUES (?,?,?)",
                (name, time.time(), json.dumps(info or {}, sort_keys=True)),
            )


def objective_name(weights: dict[str, float]) -> str:
    """The objective's name: its one metric, or the weighted sum (``0.5·mc/acc + 0.5·heldout/bpb``)."""
    return next(iter(weights)) if len(weights) == 1 else " + ".join(f"{w:g}·{m}" for m, w in weights.items())


def open_campaign(campaign_dir: str | Path) -> Store:
    """A campaign's results store, read-only (safe while the driver runs). A campaign from before the objective was
    recorded gets it once, from the suite its pipeline.yaml names."""
    campaign_dir = Path(campaign_dir)
    if not (campaign_dir / DB).exists():
        raise BookmixError(
            f"{campaign_dir}: not a campaign folder (no {DB}); start one with `bookmix run PIPELINE.yaml`"
        )
    store = Store(campaign_dir / DB, readonly=True)
    if store.objective() is None:
        store.close()
        _migrate_objective(campaign_dir)
        store = Store(campaign_dir / DB, readonly=True)
    return store


def _migrate_objective(campaign_dir: Path) -> None:
    """Fill the meta table of an older campaign from its suite (once: later opens read the recorded direction)."""
    from bookmix.evals.suite import Suite
    from bookmix.utils.io import read_yaml

    try:
        suite = (read_yaml(campaign_dir / "pipeline.yaml") or {})["eval"]["suite"]
        objective = (Suite.from_dict(suite) if isinstance(suite, dict) else Suite.load(suite)).objective
    except (BookmixError, KeyError, TypeError):
        return  # unknown: records() and ranked() say so when asked
    try:
        with Store(campaign_dir / DB) as store:
            store.record_objective(objective.weights, objective.direction)
    except sqlite3.Error:  # a read-only copy of the campaign: nothing can be recorded
        return


def objective_weights(campaign_dir: str | Path) -> dict[str, float] | None:
    """The objective's terms (metric → weight) as the campaign recorded them; None when unknown."""
    with open_campaign(campaign_dir) as store:
        return (store.objective() or {}).get("weights")


def load_campaign(
    campaign_dir: str | Path, library: str | Path | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """(search records, out-of-sample records, the campaign's Library or None when it has moved) for the analysis;
    records oriented higher-is-better. ``library``: the library folder to open instead of the campaign's own."""
    campaign_dir = Path(campaign_dir)
    with open_campaign(campaign_dir) as store:
        records = store.records(ANALYSED_STAGES)
        holdout = store.records(HOLDOUT_STAGES)
        lib_path = library or store.library_path()
    if not records:
        raise BookmixError(f"{campaign_dir}: no completed search trial to analyse (see `bookmix status`)")
    if library is None and not (lib_path and Path(lib_path).exists()):
        return records, holdout, None
    from bookmix.library import Library

    return records, holdout, Library.open(lib_path)
