"""Verification baselines read their books the way the proposal reads its own."""

from __future__ import annotations

from bookmix.campaign.designs import baseline_recipes
from bookmix.library.testing import make_library
from bookmix.recipes import Recipe


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
