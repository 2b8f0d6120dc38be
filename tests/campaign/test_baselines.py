"""Verification baselines read their books the way the proposal reads its own."""

from __future__ import annotations

from bookmix.campaign.designs import baseline_recipes
from bookmix.recipes import Recipe
from support.library import make_library


def test_baselines_copy_the_proposals_reading_settings(tmp_path):
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"]
    texts = [" ".join(words[(i + j) % 8] for j in range(400 + 37 * i)) + "." for i in range(10)]
    lib = make_library(tmp_path / "lib", texts)
    ids = [b.id for b in lib.books()][:3]
    proposal = Recipe.from_dict(
        {"books": ids, "epochs": 3, "sparsity": {"keep": 0.5, "chunk_tokens": 64, "pattern": "random"}}
    ).to_dict()
    baselines = [Recipe.from_dict(d) for d in baseline_recipes(proposal, 3, lib, seed=0)]
    assert len(baselines) == 3
    for b in baselines:
        assert len(b.books) == 3 and b.books != sorted(ids)
        d = b.to_dict()
        assert d["epochs"] == 3 and d["sparsity"] == proposal["sparsity"] and d["grain"] == proposal["grain"]


def test_verification_never_reuses_a_search_trial(tmp_path):
    from pathlib import Path

    from bookmix.campaign.plan import make_spec, plan_verification
    from bookmix.config import load_pipeline

    cfg = load_pipeline(Path(__file__).resolve().parents[2] / "examples" / "demo.yaml")
    recipe = Recipe.from_dict({"books": ["a" * 16, "b" * 16]}).to_dict()
    model = {"n_layer": 1}
    searched = {make_spec(cfg, recipe, model, s, "search", 0, tmp_path).trial_id for s in cfg.seeds.seeds + [1, 2]}
    verify = plan_verification(cfg, recipe, [], model, 1, tmp_path)  # the proposal is a searched recipe
    assert len(verify) == cfg.verification.seeds
    assert not {s.trial_id for s in verify} & searched
