"""Every design on a fresh library (no cluster labels yet): it clusters the library itself when that is cheap, or
stops with the exact command to run, never with a module path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bookmix.cli import main
from bookmix.errors import BookmixError
from bookmix.recipes import parse_design, run_design
from bookmix.recipes.recipe import load_recipes

from .conftest import topic_texts

BOOKS = 14


@pytest.fixture
def fresh_lib(tmp_path):
    """A new library for each test: clustering writes the catalog, so no test sees another's labels."""
    from support.library import make_library

    return make_library(tmp_path / "lib", topic_texts(BOOKS), holdout=0.2)


def _parent(lib) -> dict:
    ids = [b.id for b in lib.books(split="train")][:4]
    return {"books": ids, "grain": "books", "order": "cluster_blocks"}


DESIGNS = {
    "random": ["--design", "random", "--n", "3", "--books-per-set", "3"],
    "stratified": ["--design", "stratified", "--n", "3", "--books-per-set", "4"],
    "dirichlet": ["--design", "dirichlet", "--n", "3", "--books-per-set", "4"],
    "datamodels": ["--design", "datamodels", "--n", "3"],
    "factorial": [
        "--design",
        "factorial",
        "-p",
        "sizes=[3]",
        "-p",
        "orders=[random, cluster_blocks]",
        "-p",
        "recipe.grain=books",
    ],
    "latin_hypercube": [
        "--design",
        "latin_hypercube",
        "--n",
        "3",
        "-p",
        "size_range=[2, 5]",
        "-p",
        "orders=[cluster_blocks]",
        "-p",
        "recipe.grain=books",
    ],
    "list": ["--design", "list"],
    "mutate": ["--design", "mutate", "--n", "3", "-p", "orders=[cluster_blocks]"],
}
NEEDS_CLUSTERS = {"stratified", "dirichlet", "factorial", "latin_hypercube", "list", "mutate"}


def _argv(name: str, lib, out) -> list[str]:
    argv = ["design", "--library", str(lib.path), "--out", str(out), "--seed", "0", *DESIGNS[name], "--json"]
    if name == "list":
        argv += ["-p", f"recipes={json.dumps([_parent(lib)])}"]
    if name == "mutate":
        argv += ["-p", f"parents={json.dumps([_parent(lib)])}", "-p", "ops=[order, swap]"]
    return argv


@pytest.mark.parametrize("name", sorted(DESIGNS))
def test_every_design_works_on_a_fresh_library(name, fresh_lib, tmp_path, capsys):
    from bookmix.recipes.clusters import has_clusters

    assert not has_clusters(fresh_lib)
    assert main(_argv(name, fresh_lib, tmp_path / "r.jsonl")) == 0
    out = json.loads(capsys.readouterr().out)
    recipes = load_recipes(tmp_path / "r.jsonl")
    assert recipes and len(recipes) == out["n"]
    if name in NEEDS_CLUSTERS:
        assert has_clusters(fresh_lib) and len(out["notes"]) == 1
        assert "were clustered into" in out["notes"][0] and "bookmix recipe cluster --library" in out["notes"][0]
    else:
        assert not has_clusters(fresh_lib) and out["notes"] == []  # nothing computed that the design does not need
    for r in recipes:  # the recipes stream: cluster_blocks finds its labels
        assert r.stream(fresh_lib, 32).n_windows > 0


def test_a_large_library_gets_the_command_instead(fresh_lib, tmp_path, monkeypatch, capsys):
    from bookmix.recipes import clusters

    monkeypatch.setattr(clusters, "AUTO_CLUSTER_MAX_BOOKS", BOOKS - 1)
    assert main(_argv("stratified", fresh_lib, tmp_path / "r.jsonl")) == 2
    err = capsys.readouterr().err
    assert f"bookmix recipe cluster --library {fresh_lib.path}" in " ".join(err.split())
    assert "bookmix.recipes" not in err
    assert not clusters.has_clusters(fresh_lib)
    # and the command it names is the one that works
    assert main(["recipe", "cluster", "--library", str(fresh_lib.path), "--k", "2", "--json"]) == 0
    capsys.readouterr()
    assert main(_argv("stratified", fresh_lib, tmp_path / "r.jsonl")) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == []


def test_an_in_memory_table_without_labels_names_the_command():
    table = {
        "id": np.array([f"{i:016x}" for i in range(6)], dtype=object),
        "tokens": np.full(6, 100),
        "cluster": np.full(6, -1),
    }
    with pytest.raises(BookmixError, match="bookmix recipe cluster"):
        run_design(parse_design({"design": "stratified", "n": 1, "books_per_set": 2}), table)


def test_by_a_missing_column_lists_the_columns(fresh_lib):
    with pytest.raises(BookmixError, match=r"no catalog column 'genre'; columns: .*lang"):
        run_design(parse_design({"design": "stratified", "n": 1, "books_per_set": 2, "by": "genre"}), fresh_lib)
