"""The Recipe schema: canonical ids, round trips, and errors that name the field."""

from __future__ import annotations

import json

import pytest
import yaml

from bookmix.errors import BookmixError, ConfigError
from bookmix.recipes import Recipe, load_recipes, save_recipes, select_recipe

A, B, C = "a" * 16, "b" * 16, "c" * 16


def test_two_spellings_of_one_recipe_share_an_id(tmp_path):
    short = Recipe.from_dict({"books": [B, A]})
    full = Recipe.from_dict(
        {"seed": 0, "books": [A, B], "order": "random", "grain": "windows", "epochs": 1, "sparsity": {"keep": 1}}
    )
    assert short.id == full.id and len(short.id) == 12
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"books": [A, B], "sparsity": {"pattern": "stride"}}))
    (tmp_path / "r.json").write_text(json.dumps({"books": [B, A]}))
    assert Recipe.load(tmp_path / "r.yaml").id == Recipe.load(tmp_path / "r.json").id == short.id


def test_content_changes_change_the_id_and_meta_does_not():
    base = Recipe.from_dict({"books": [A, B]})
    assert Recipe.from_dict({"books": [A, B], "seed": 1}).id != base.id
    assert Recipe.from_dict({"books": [A, B], "sparsity": {"keep": 0.5}}).id != base.id
    assert Recipe.from_dict({"books": [A, B], "meta": {"design": "x"}}).id == base.id
    # listing order matters exactly when the stream reads books as listed
    seq = {"grain": "books", "order": "as_listed"}
    assert Recipe.from_dict({"books": [A, B], **seq}).id != Recipe.from_dict({"books": [B, A], **seq}).id


def test_to_dict_round_trips_and_a_stale_id_is_caught():
    r = Recipe.from_dict(
        {"phases": [{"books": [A], "order": "as_listed"}, {"books": [C, B]}], "grain": "books", "order": "length_asc"}
    )
    d = r.to_dict()
    assert Recipe.from_dict(d).id == r.id == d["id"]
    assert r.books == [A, B, C] and r.phase_list() == [([A], "as_listed"), ([B, C], "length_asc")]
    d["seed"] = 7
    with pytest.raises(ConfigError, match="does not match the content"):
        Recipe.from_dict(d)


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"books": [A], "sparsity": {"keep": 0}}, r"sparsity.keep: must be in \(0, 1\], got 0"),
        ({"books": [A], "sparsity": {"keep": 1.5}}, r"sparsity.keep: must be in \(0, 1\], got 1.5"),
        ({"books": [A], "sparsity": {"chunk_tokens": 0}}, "sparsity.chunk_tokens: must be ≥ 1"),
        ({"books": [A], "sparsity": {"pattern": "zigzag"}}, "sparsity.pattern"),
        ({"books": []}, "books: a recipe needs at least one book"),
        ({"books": [A, A]}, "books: book 'aaaaaaaaaaaaaaaa' is listed twice"),
        ({"books": [A], "order": "length_asc"}, "order: 'length_asc' needs grain 'books'"),
        ({"books": [A], "order": "interleave", "grain": "books"}, "order: 'interleave' cuts books"),
        ({"books": [A], "epochs": 5}, "epochs: 5 epochs read a book 5 times, above max_repeats 4"),
        ({"books": [A], "epochs": 0}, "epochs: must be ≥ 1, got 0"),
        ({"phases": [{"books": [A]}]}, "phases: 2 or 3 phases, got 1"),
        ({"books": [A], "phases": [{}, {}], "epochs": 3}, "epochs: 3 epochs read a book 6 times"),
        ({"books": [A], "colour": "red"}, "colour"),
    ],
)
def test_bad_recipes_name_the_field(d, message):
    with pytest.raises(ConfigError, match=message):
        Recipe.from_dict(d)


def test_files_jsonl_and_selection(tmp_path):
    recipes = [Recipe.from_dict({"books": [A], "seed": s}) for s in range(3)]
    save_recipes(tmp_path / "all.jsonl", recipes)
    assert [r.id for r in load_recipes(tmp_path / "all.jsonl")] == [r.id for r in recipes]
    assert select_recipe(tmp_path / "all.jsonl", index=2).id == recipes[2].id
    assert select_recipe(tmp_path / "all.jsonl", recipe_id=recipes[1].id[:8]).id == recipes[1].id
    with pytest.raises(BookmixError, match="holds 3 recipes"):
        Recipe.load(tmp_path / "all.jsonl")
    with pytest.raises(BookmixError, match="--index 3"):
        select_recipe(tmp_path / "all.jsonl", index=3)
    save_recipes(tmp_path / "one.yaml", recipes[:1])
    assert Recipe.load(tmp_path / "one.yaml").id == recipes[0].id
    (tmp_path / "bad.jsonl").write_text('{"books": ["x"]}\n{"books": ["y"], "sparsity": {"keep": -1}}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl:2: sparsity.keep"):
        load_recipes(tmp_path / "bad.jsonl")
    with pytest.raises(BookmixError, match="cannot read"):
        Recipe.load(tmp_path / "missing.yaml")


def test_phases_with_their_own_books_reject_other_top_level_books():
    with pytest.raises(ConfigError, match="books: with phases that list their own books"):
        Recipe.from_dict({"books": [C], "phases": [{"books": [A]}, {"books": [B]}]})
    same = Recipe.from_dict({"books": [B, A], "phases": [{"books": [A]}, {"books": [B]}]})
    assert same.id == Recipe.from_dict({"phases": [{"books": [A]}, {"books": [B]}]}).id
