"""One recipe, one held-out loss: `bookmix train` and a campaign trial compose a trial the same way (bookmix.trial)
and sample the same held-out windows (recipes.heldout), so the same recipe, model and settings report the same loss."""

from __future__ import annotations

import json

import pytest
import yaml

from bookmix.campaign.spec import TrialSpec
from bookmix.campaign.worker import run_trial
from bookmix.cli import main
from bookmix.library import Library
from bookmix.models.config import preset
from bookmix.recipes import Recipe
from bookmix.training.config import TrainConfig

SUITE = {
    "name": "tiny",
    "tasks": [{"name": "heldout", "type": "heldout_loss", "max_books": 2, "tokens_per_book": 256, "by": []}],
    "objective": {"metric": "heldout/loss", "direction": "minimize"},
}


@pytest.fixture(scope="module")
def several_holdout_books(tmp_path_factory):
    """A library with four holdout books: where two samplers could disagree (which books, their boundaries)."""
    from bookmix.library import ingest
    from bookmix.storyworld import generate

    root = tmp_path_factory.mktemp("heldout_world")
    generate(root / "world", books=10, seed=5, tokens_per_book=2000)
    ingest([root / "world" / "books"], root / "library", tokenizer="train:400", holdout=0.4, workers=1)
    return root / "library"


def test_bookmix_train_and_a_campaign_trial_report_the_same_heldout_loss(several_holdout_books, tmp_path, capsys):
    world_library = several_holdout_books
    lib = Library.open(world_library)
    assert len(lib.books(split="holdout")) >= 3
    recipe = Recipe.from_dict({"books": [b.id for b in lib.books(split="train")][:3], "epochs": 1, "seed": 2})
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict()), encoding="utf-8")
    model = preset("nano", vocab_size=lib.vocab_size)
    tokens = 8 * model.block_size * 3
    train = TrainConfig(micro_batch=8, lr=3e-3, max_tokens=tokens, log_every=1, seed=0, device="cpu")

    argv = [
        "train",
        "--library",
        str(world_library),
        "--recipe",
        str(tmp_path / "recipe.yaml"),
        "--out",
        str(tmp_path / "cli"),
        "--model",
        "nano",
        "--micro-batch",
        "8",
        "--lr",
        "3e-3",
        "--max-tokens",
        str(tokens),
        "--log-every",
        "1",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--json",
    ]
    assert main(argv) == 0
    by_cli = json.loads(capsys.readouterr().out)

    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    spec = TrialSpec(
        trial_id="t0",
        recipe=recipe.to_dict(),
        seed=0,
        stage="search",
        round=0,
        model=model.to_dict(),
        train=train.model_dump(mode="json"),
        library=str(world_library),
        suite=str(tmp_path / "suite.yaml"),
        out_dir=str(tmp_path / "trial"),
        threads=1,
    )
    by_campaign = run_trial(spec, "cpu")
    assert by_campaign.state == "completed", by_campaign.error
    assert by_cli["status"] == "completed" and by_cli["tokens"] == by_campaign.tokens == tokens
    assert by_campaign.metrics["train/heldout_loss"]["value"] == pytest.approx(by_cli["heldout_loss"], rel=1e-6)
