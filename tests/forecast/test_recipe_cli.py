"""`bookmix estimate --recipe R --library DIR` against a real (tiny) library and recipe."""

from __future__ import annotations

import json

import numpy as np

from bookmix.cli import main
from bookmix.models.config import preset
from bookmix.recipes.recipe import Recipe, save_recipes


def test_recipe_tokens_come_from_its_stream(tmp_path, capsys):
    from support.library import make_library

    rng = np.random.default_rng(0)
    words = ["ship", "sea", "king", "queen", "the", "of", "and", "a", "storm", "castle", "wave", "crown"]
    lib = make_library(tmp_path, [" ".join(rng.choice(words, size=400 + 50 * i)) for i in range(5)], vocab_size=300)
    ids = [b.id for b in lib.books()][:4]
    recipe = Recipe.from_dict({"books": ids, "epochs": 2})
    path = tmp_path / "recipe.jsonl"
    save_recipes(path, [recipe])

    code = main(["estimate", "--model", "nano", "--recipe", str(path), "--library", str(lib.path), "--seq-len", "32",
                 "--gpu", "rtx-4090", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    expected = recipe.stream(lib, 32).total_tokens  # the epochs are in the stream already
    assert data["rows"][0]["tokens"] == expected and data["rows"][0]["books"] == 4
    assert data["assumptions"]["model"]["vocab_size"] == lib.vocab_size
    assert data["rows"][0]["flops"] == expected * preset("nano", vocab_size=lib.vocab_size).flops_per_token(32)

    code = main(["estimate", "--model", "nano", "--recipe", str(path), "--json"])
    assert code == 2 and "--library" in capsys.readouterr().err
