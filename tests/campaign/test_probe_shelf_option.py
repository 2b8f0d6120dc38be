"""``search.probe_shelf``: validated with the pipeline, and composed into every recipe by one function."""

from __future__ import annotations

import pytest

from bookmix.campaign.designs import with_shelf
from bookmix.config import parse_pipeline
from bookmix.errors import ConfigError
from bookmix.recipes import ProbeShelf, Recipe


def _pipeline(tmp_path, shelf) -> dict:
    return {
        "campaign": {"name": "t", "out": str(tmp_path / "c")},
        "library": {"path": str(tmp_path / "lib")},
        "search": {"designs": [{"design": "random", "n": 2, "books_per_set": 1}], "probe_shelf": shelf},
        "eval": {"suite": {"tasks": [{"type": "heldout_loss"}], "objective": "heldout_loss/bpb"}},
    }


def test_probe_shelf_option_parses_and_fails_naming_the_field(tmp_path):
    cfg = parse_pipeline(_pipeline(tmp_path, {"langs": ["en", "ru"], "share": 0.1}))
    assert cfg.search.probe_shelf == ProbeShelf(langs=["en", "ru"], share=0.1)
    with pytest.raises(ConfigError, match=r"search\.probe_shelf\.share"):
        parse_pipeline(_pipeline(tmp_path, {"share": 0.9}))
    with pytest.raises(ConfigError, match=r"search\.probe_shelf\.people"):
        parse_pipeline(_pipeline(tmp_path, {"people": 3}))


def test_with_shelf_sets_the_same_shelf_on_every_recipe():
    recipes = [Recipe(books=["a" * 16, "b" * 16]).to_dict(), Recipe(books=["c" * 16], epochs=2).to_dict()]
    assert with_shelf(recipes, None) is recipes
    shelf = ProbeShelf(langs=["ru"], share=0.1)
    out = with_shelf(recipes, shelf)
    assert [Recipe.from_dict(r).shelf for r in out] == [shelf, shelf]
    assert [r["books"] for r in out] == [r["books"] for r in recipes] and out[1]["epochs"] == 2
    assert all(r["id"] != o["id"] for r, o in zip(recipes, out, strict=True))
    assert with_shelf(out, shelf) == out  # idempotent: a proposal already carrying the shelf keeps its id


def test_probe_tasks_must_ask_about_the_shelf_the_recipes_read():
    from bookmix.campaign.runner import check_probe_shelf
    from bookmix.evals import Suite

    suite = Suite.from_dict(
        {
            "tasks": [{"name": "t", "type": "probe_shelf", "kind": "synthesis", "shelf": {"langs": ["en", "ru"]}}],
            "objective": "t/prob",
        }
    )
    check_probe_shelf(suite, ProbeShelf(langs=["en", "ru"], share=0.1, exclude=["en/rule_000"]))  # same shelf
    with pytest.raises(ConfigError, match=r"tasks\[0\] \(t\) asks about a probe shelf.*search\.probe_shelf is not set"):
        check_probe_shelf(suite, None)
    with pytest.raises(ConfigError, match=r"tasks\[0\] \(t\).*'langs': \['en'\]"):
        check_probe_shelf(suite, ProbeShelf(langs=["en"]))
