"""A synthetic campaign for the dashboard's tests and its scale benchmark: real store, made-up results, no training.

    make_campaign(tmp_path / "c", recipes=40, library=lib_path)     # → the campaign folder

Everything goes through the campaign room's own API (``Store``, ``TrialSpec``, ``TrialResult``, ``trial_id``) and the
recipe room's ``Recipe``, so the database is exactly what a real campaign writes. The objective is a held-out loss
(minimised) with a planted signal: every book has a fixed effect, so the analysis has something true to find. The
texts of samples are word salad made here, never book text.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bookmix.utils.io import atomic_write_json, atomic_write_text

SUITE = {
    "name": "synthetic",
    "tasks": [
        {"name": "heldout", "type": "heldout_loss", "max_books": 2, "tokens_per_book": 512, "by": []},
        {"name": "samples", "type": "samples", "prompts": ["The old harbour", "She opened the letter"]},
    ],
    "objective": {"metric": "heldout/loss", "direction": "minimize"},
}
MODEL = {"name": "nano", "n_layer": 2, "n_head": 2, "d_model": 64, "block_size": 128, "vocab_size": 512}
WORDS = ("river", "lantern", "quiet", "morning", "stone", "garden", "letter", "harbour", "winter", "bright", "shadow",
         "door", "voice", "road", "candle", "field", "window", "silver", "north")  # fmt: skip


@dataclass(frozen=True)
class CampaignShape:
    recipes: int = 40
    books_per_set: int = 5
    pool: int = 30
    """Made-up book ids to draw from when no library is given."""
    replicated: float = 0.25
    """Share of recipes trained with a second seed (the noise floor needs replicates)."""
    curve_points: int = 120
    pending: int = 3
    running: int = 2
    failed: int = 1
    verify: bool = True
    """Add a proposal and two baselines × 3 seeds as a verification stage, with verification.json."""
    findings: bool = True
    """Run the analysis and write findings.json, as the campaign's analysis stage does."""
    transfer: bool = True
    """Write a transfer.json (made-up target scores of 8 search recipes over two seeds, one pair swapped)."""
    seed: int = 0


def _book_ids(library: Path | None, n: int, rng: np.random.Generator) -> tuple[list[str], str]:
    if library is not None:
        from bookmix.library import Library

        lib = Library.open(library)
        return [b.id for b in lib.books(split="train")], str(library)
    ids = [hashlib.sha256(f"book{i}".encode()).hexdigest()[:16] for i in range(n)]
    return ids, "/nonexistent/library"


def _recipe(books: list[str], i: int, rng: np.random.Generator, design: str = "random") -> dict[str, Any]:
    from bookmix.recipes import Recipe

    grain = ["windows", "books"][i % 2]
    order = "random" if grain == "windows" else ["length_asc", "difficulty_desc"][(i // 2) % 2]
    keep = [1.0, 0.5, 0.25][i % 3]
    return Recipe.from_dict(
        {
            "books": books,
            "order": order,
            "grain": grain,
            "sparsity": {"keep": keep},
            "seed": i,
            "meta": {"design": design},
        }
    ).to_dict()


def _curves(rng: np.random.Generator, final: float, points: int) -> list[dict[str, Any]]:
    steps = np.arange(1, points + 1) * 10
    loss = final + 4.0 * np.exp(-steps / (points * 2.5)) + rng.normal(0, 0.03, points)
    rows = [
        {"name": "loss", "step": int(s), "tokens": int(s) * 1024, "value": float(v)}
        for s, v in zip(steps, loss, strict=True)
    ]
    held = steps[::10]
    rows += [{"name": "heldout_loss", "step": int(s), "tokens": int(s) * 1024,
              "value": float(final + 0.1 + 4.0 * np.exp(-s / (points * 2.5)))} for s in held]  # fmt: skip
    rows += [{"name": "lr", "step": int(s), "tokens": int(s) * 1024, "value": 1e-3} for s in steps]
    return rows


def _salad(rng: np.random.Generator, n: int = 18) -> str:
    return " ".join(rng.choice(WORDS, n).tolist()) + "."


def make_campaign(campaign_dir: str | Path, library: str | Path | None = None, shape: CampaignShape | None = None,
                  **overrides: Any) -> Path:  # fmt: skip
    """Create (or overwrite) a synthetic campaign folder; ``overrides`` replace fields of ``shape``."""
    from bookmix.campaign.spec import TrialResult, TrialSpec, trial_id
    from bookmix.campaign.store import Store

    shape = shape or CampaignShape()
    if overrides:
        shape = CampaignShape(**{**shape.__dict__, **overrides})
    campaign_dir = Path(campaign_dir)
    campaign_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(shape.seed)
    books, lib_path = _book_ids(Path(library) if library else None, max(shape.pool, shape.books_per_set * 2), rng)
    effect = dict(zip(books, rng.normal(0, 0.15, len(books)).tolist(), strict=True))  # planted: lower loss is better
    suite_path = campaign_dir / "suite.yaml"
    atomic_write_text(suite_path, yaml.safe_dump(SUITE, sort_keys=False))
    atomic_write_text(
        campaign_dir / "pipeline.yaml",
        yaml.safe_dump(
            {
                "campaign": {"name": campaign_dir.name, "out": str(campaign_dir)},
                "library": {"path": lib_path},
                "eval": {"suite": SUITE},
                "executor": {"kind": "local", "workers": 2},
            },
            sort_keys=False,
        ),  # fmt: skip
    )
    train = {"max_tokens": shape.curve_points * 10 * 1024, "lr": 0.003}
    k = min(shape.books_per_set, len(books))
    recipes = [_recipe(sorted(rng.choice(books, k, replace=False).tolist()), i, rng) for i in range(shape.recipes)]

    def spec(recipe: dict, seed: int, stage: str, round_: int) -> TrialSpec:
        tid = trial_id(recipe["id"], MODEL, train, seed)
        return TrialSpec(trial_id=tid, recipe=recipe, seed=seed, stage=stage, round=round_, model=MODEL,
                         train={**train, "seed": seed}, library=lib_path, suite=str(suite_path),
                         out_dir=str(campaign_dir / "trials" / tid))  # fmt: skip

    def loss_of(recipe: dict) -> float:
        keep = recipe["sparsity"]["keep"]
        return 3.0 - float(np.mean([effect[b] for b in recipe["books"]])) * 2 + 0.2 * (1 - keep)

    with Store(campaign_dir / "campaign.sqlite") as store:
        store.record_objective({"heldout/loss": 1.0}, "minimize")  # as the driver does when a campaign starts
        store.add_recipes(recipes, round=0)
        specs = [spec(r, 0, "search", 0) for r in recipes]
        n_rep = int(round(shape.replicated * len(recipes)))
        specs += [spec(r, 1, "replicate", 0) for r in recipes[:n_rep]]
        store.add_trials(specs)
        # The open trials are the last search trials, so that every replicate pair (of the first recipes) finishes
        # and the noise floor is known.
        n_open = min(shape.pending + shape.running + shape.failed, len(recipes) - n_rep)
        cut = len(recipes) - n_open
        finished, open_ = specs[:cut] + specs[len(recipes) :], specs[cut : len(recipes)]
        t0 = time.time() - 3600.0
        for i, s in enumerate(finished):
            _record(store, s, loss_of(s.recipe) + rng.normal(0, 0.05), rng, shape, t0 + 20.0 * i, dialogue=i % 2 == 0)
        running = open_[shape.pending : shape.pending + shape.running]
        store.mark_running([s.trial_id for s in running], "cuda")
        for s in open_[shape.pending + shape.running :]:
            store.record(TrialResult.failure(s.trial_id, "RuntimeError: synthetic failure for the dashboard test"))
        store.finish_stage("design:0", {"recipes": [r["id"] for r in recipes]})

        findings = None
        if shape.findings and len(finished) >= 4:
            from bookmix.analysis import AnalysisConfig, analyze
            from bookmix.campaign.store import load_campaign

            records, _, lib = load_campaign(campaign_dir)
            findings = analyze(records, lib, AnalysisConfig(n_boot=50)).to_dict()
            findings["objective_orientation"] = "negated (the suite minimises; higher is better here)"
            atomic_write_json(campaign_dir / "findings.json", findings)
            store.finish_stage("analysis", {"proposal": (findings.get("proposal") or {}).get("recipe")})

        if shape.verify and findings and findings.get("proposal"):
            proposal = findings["proposal"]["recipe"]
            baselines = [_recipe(sorted(rng.choice(books, k, replace=False).tolist()), 1000 + i, rng, "verify")
                         for i in range(2)]  # fmt: skip
            store.add_recipes([proposal, *baselines], round=1, design="verify")
            # seeds 100+: a proposal may equal a searched recipe, and its verification trials must be new ones
            vspecs = [spec(r, s, "verify", 1) for r in [proposal, *baselines] for s in (100, 101, 102)]
            store.add_trials(vspecs)
            for i, s in enumerate(vspecs):
                _record(store, s, loss_of(s.recipe) + rng.normal(0, 0.05), rng, shape, t0 + 20.0 * (len(finished) + i))
            from bookmix.analysis import verify_stats

            prop = [-store.trial(s.trial_id)["objective"] for s in vspecs if s.recipe_id == proposal["id"]]
            base: dict[str, list[float]] = {}
            for s in vspecs:
                if s.recipe_id != proposal["id"]:
                    base.setdefault(s.recipe_id, []).append(-store.trial(s.trial_id)["objective"])
            atomic_write_json(campaign_dir / "verification.json",
                              {"proposal": proposal["id"], "baselines": [b["id"] for b in baselines],
                               **verify_stats(prop, base, seed=0)})  # fmt: skip
            store.finish_stage("verification", {})
    if shape.transfer and len(recipes) >= 8:
        _write_transfer(campaign_dir, [r["id"] for r in recipes[:8]], [-loss_of(r) for r in recipes[:8]], rng)
    return campaign_dir


def _write_transfer(campaign_dir: Path, ids: list[str], proxy: list[float], rng: np.random.Generator) -> None:
    """transfer.json as the transfer stage writes it: the target scores are the proxy's, doubled, with the two best
    recipes swapped by a margin far beyond the seed noise (a rank flip), over two seeds a side."""
    from bookmix.analysis.transfer import TransferRow, compare_proxies, transfer_report

    order = np.argsort(proxy)[::-1]
    target = [2 * p for p in proxy]
    a, b = int(order[0]), int(order[1])
    target[a], target[b] = target[b] - 0.5, target[a] + 0.5
    rows = [
        TransferRow(
            i,
            [p + rng.normal(0, 0.002) for _ in range(2)],
            [t + rng.normal(0, 0.002) for _ in range(2)],
            "top" if k < 2 else "random",
        )
        for k, (i, p, t) in enumerate(zip(ids, proxy, target, strict=True))
    ]
    rep = transfer_report(rows, n_boot=100)
    atomic_write_json(campaign_dir / "transfer.json", {
        "target": {"name": "small", "model": {}, "train": {}}, "seeds": [0, 1], "recipes": ids,
        "roles": {r.recipe_id: r.role for r in rows}, "proxies": {"campaign": {"cost": 1.0, **rep.to_dict()}},
        "best": compare_proxies({"campaign": rep}), "summary": []})  # fmt: skip


def _record(
    store, spec, loss: float, rng: np.random.Generator, shape: CampaignShape, finished_at: float, dialogue: bool = False
) -> None:
    from bookmix.campaign.spec import TrialResult

    store.mark_running([spec.trial_id], "cuda")
    store.record(
        TrialResult(
            trial_id=spec.trial_id,
            state="completed",
            device="cuda",
            objective=float(loss),
            objective_stderr=0.01,
            metrics={
                "heldout/loss": {"value": float(loss), "stderr": 0.01},
                "heldout/bpb": {"value": float(loss) / 2.1, "stderr": 0.005},
            },
            curves=_curves(rng, loss, shape.curve_points),
            tokens=shape.curve_points * 10 * 1024,
            train_seconds=float(rng.uniform(30, 60)),
            eval_seconds=float(rng.uniform(2, 5)),
            artifacts={"checkpoint": spec.out_dir},
        )  # fmt: skip
    )
    # Spread the finish times over an hour, as a real campaign's would be (record() stamps them all "now").
    with store.conn:
        store.conn.execute("UPDATE trials SET finished_at=?, started_at=? WHERE id=?",
                           (finished_at, finished_at - 40.0, spec.trial_id))  # fmt: skip
    out = Path(spec.out_dir)
    samples = [{"task": "samples", "prompt": p, "completions": [_salad(rng)]} for p in SUITE["tasks"][1]["prompts"]]
    atomic_write_json(out / "eval.json", {"suite": "synthetic", "samples": samples})
    if dialogue:  # every other search trial has a (made-up) dialogue layer
        atomic_write_json(out / "dialogue" / "eval.json", {"samples": [
            {"task": "chat", "prompt": "Who lives by the river?", "completions": [_salad(rng, 10)]}]})  # fmt: skip
    (out / "log.txt").write_text(json.dumps({"trial": spec.trial_id}) + "\n", encoding="utf-8")
