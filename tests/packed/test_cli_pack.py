"""`bookmix train-pack` on a real storyworld library: each run folder is what `bookmix train` writes for its recipe."""

from __future__ import annotations

import json

import pytest

from bookmix.cli import main
from bookmix.training.curve import read_curve

ARGS = ["--model", "nano", "--seq-len", "64", "--micro-batch", "8", "--lr", "3e-3", "--log-every", "5",
        "--max-tokens", str(64 * 8 * 6), "--device", "cpu", "--json"]


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    from bookmix.library import Library, ingest
    from bookmix.recipes.recipe import Recipe, save_recipes
    from bookmix.storyworld.generate import generate

    root = tmp_path_factory.mktemp("story")
    generate(root / "world", books=6, seed=0, tokens_per_book=2500)
    ingest([root / "world"], root / "lib", tokenizer="train:300", holdout=0.34, workers=1)
    ids = sorted(b.id for b in Library.open(root / "lib").books(split="train"))
    recipes = [Recipe.from_dict({"books": ids[i : i + 3], "order": "random", "epochs": 2, "seed": i}) for i in range(3)]
    save_recipes(root / "recipes.jsonl", recipes)
    return root


def _json(capsys) -> dict:
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


@pytest.mark.slow
def test_train_pack_writes_what_train_writes_and_resumes(story, tmp_path, capsys):
    argv = ["train-pack", "--library", str(story / "lib"), "--recipes", str(story / "recipes.jsonl"),
            "--out", str(tmp_path / "runs"), "--pack", "2", *ARGS]
    assert main(argv) == 0
    got = _json(capsys)
    assert got["models"] == 3 and got["largest_pack"] == 2  # two packs: 2 models, then 1
    rows = got["results"]
    assert all(r["status"] == "completed" and r["steps"] == 6 for r in rows)
    assert len({r["recipe_id"] for r in rows}) == 3

    # the same recipe through `bookmix train`: the same curve, the same result, the same checkpoint config
    from bookmix.recipes.recipe import load_recipes

    (story / "one.json").write_text(json.dumps(load_recipes(story / "recipes.jsonl")[1].to_dict()))
    assert main(["train", "--library", str(story / "lib"), "--recipe", str(story / "one.json"),
                 "--out", str(tmp_path / "single"), *ARGS]) == 0
    single = _json(capsys)
    assert rows[1]["final_loss"] == pytest.approx(single["final_loss"], rel=1e-4)
    assert single["heldout_loss"] is not None
    assert rows[1]["heldout_loss"] == pytest.approx(single["heldout_loss"], rel=1e-4)
    packed_dir = tmp_path / "runs" / rows[1]["recipe_id"]
    assert [r["step"] for r in read_curve(packed_dir / "curve.jsonl")] == [5, 6]
    config_p = json.loads((packed_dir / "checkpoint" / "config.json").read_text())
    config_s = json.loads((tmp_path / "single" / "checkpoint" / "config.json").read_text())
    assert config_p == config_s  # recipe, library, stream, model, training settings: indistinguishable

    assert main(argv) == 0  # all finished: the stored results come back, nothing trains again
    assert _json(capsys)["results"] == rows


def test_train_pack_refuses_a_bad_pack_size(story, tmp_path, capsys):
    argv = ["train-pack", "--library", str(story / "lib"), "--recipes", str(story / "recipes.jsonl"),
            "--out", str(tmp_path / "runs"), "--pack", "0", *ARGS]
    assert main(argv) == 2
    assert "--pack: must be ≥ 1, got 0" in capsys.readouterr().err
