"""Planning trials: recipes × seeds, plus replicates for the noise floor. Pure functions of the config and recipes.

Every trial's id is deterministic (recipe id, model shape, training mathematics, seed), so planning the same
campaign again yields the same trials and the store ignores those it already has.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from bookmix.campaign.spec import TrialSpec, trial_id
from bookmix.config import PipelineConfig


def replicate_choice(recipe_ids: list[str], fraction: float, salt: str = "replicate") -> list[str]:
    """The recipes that get replicate seeds: ceil(fraction × n) of them (at least one when fraction > 0), chosen by a
    hash of the id so the choice is stable whatever order the recipes come in."""
    if fraction <= 0 or not recipe_ids:
        return []
    k = min(len(recipe_ids), max(1, math.ceil(fraction * len(recipe_ids))))
    ranked = sorted(recipe_ids, key=lambda rid: hashlib.sha256(f"{salt}:{rid}".encode()).hexdigest())
    chosen = set(ranked[:k])
    return [rid for rid in recipe_ids if rid in chosen]


def replicate_seeds(seeds: list[int], n: int) -> list[int]:
    """``n`` seeds beyond the campaign's own, so replicates never coincide with a trial already planned."""
    start = max(seeds) + 1
    return list(range(start, start + n))


def make_spec(
    cfg: PipelineConfig,
    recipe: dict[str, Any],
    model: dict[str, Any],
    seed: int,
    stage: str,
    round: int,
    library: Path,
) -> TrialSpec:
    train = cfg.train.model_copy(update={"seed": int(seed)})
    tid = trial_id(recipe["id"], model, train.math_fields(), seed)
    return TrialSpec(
        trial_id=tid,
        recipe=recipe,
        seed=int(seed),
        stage=stage,
        round=round,
        model=model,
        train=train.model_dump(mode="json"),
        library=str(library),
        suite=str(cfg.suite_path),
        out_dir=str(cfg.campaign_dir / "trials" / tid),
        threads=cfg.executor.threads,
    )


def plan_search(
    cfg: PipelineConfig, recipes: list[dict[str, Any]], model: dict[str, Any], round: int, library: Path
) -> list[TrialSpec]:
    """Every recipe × every seed (stage ``search``), then the replicates (stage ``replicate``)."""
    specs = [make_spec(cfg, r, model, s, "search", round, library) for r in recipes for s in cfg.seeds.seeds]
    by_id = {r["id"]: r for r in recipes}
    extra = replicate_seeds(cfg.seeds.seeds, cfg.seeds.replicate_seeds)
    for rid in replicate_choice(list(by_id), cfg.seeds.replicates, salt=f"replicate:{round}"):
        specs += [make_spec(cfg, by_id[rid], model, s, "replicate", round, library) for s in extra]
    return specs


VERIFY_SEED_BASE = 1_000_000


def plan_verification(
    cfg: PipelineConfig,
    proposal: dict[str, Any],
    baselines: list[dict[str, Any]],
    model: dict[str, Any],
    round: int,
    library: Path,
) -> list[TrialSpec]:
    """The proposal and R baselines, each over S seeds (stage ``verify``).

    Verification seeds start at :data:`VERIFY_SEED_BASE`, apart from the search seeds: a proposal equal to a searched
    recipe would otherwise reuse the very trial that made it look best, and bias the test in its favour.
    """
    seeds = [VERIFY_SEED_BASE + s for s in range(cfg.verification.seeds)]
    return [make_spec(cfg, r, model, s, "verify", round, library) for r in [proposal, *baselines] for s in seeds]


def plan_out_of_sample(
    cfg: PipelineConfig, recipes: list[dict[str, Any]], model: dict[str, Any], round: int, library: Path
) -> list[TrialSpec]:
    """The out-of-sample recipes, once each at the campaign's first seed (stage ``oos``): like a search trial, never
    fitted."""
    return [make_spec(cfg, r, model, cfg.seeds.seeds[0], "oos", round, library) for r in recipes]
