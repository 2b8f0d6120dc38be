"""Recipes: which books, in what order, how sparsely read — and the designs that make thousands of them.

    from bookmix.recipes import Recipe, make_design
    recipe = Recipe.load("recipe.yaml")
    stream = recipe.stream(lib, seq_len=512)          # a WindowSource for the trainer
    recipes = make_design("random", lib, n=1000, seed=0, books_per_set=50)

Files, in dependency order: recipe.py (the schema and its id), sparsity.py and order.py (pure rules), books.py
(catalog columns as arrays), plan.py (the exact window order), stream.py (gathering windows), heldout.py (held-out windows), sampling.py and
designs.py (recipe generators), clusters.py (topic clusters for designs).
"""

from __future__ import annotations

from typing import Any

from bookmix.recipes.designs import DesignConfig, make_design, parse_design, run_design
from bookmix.recipes.recipe import Phase, Recipe, Sparsity, load_recipes, save_recipes, select_recipe
from bookmix.recipes.shelf import ProbeShelf
from bookmix.recipes.stream import ArrayWindows, RecipeStream, WindowSource


def cluster_books(lib: Any, k: int, seed: int = 0, **kwargs: Any) -> dict[str, int]:
    """Topic clusters of every book, stored in the catalog column 'cluster' (see :mod:`bookmix.recipes.clusters`)."""
    from bookmix.recipes.clusters import cluster_books as _cluster

    return _cluster(lib, k, seed, **kwargs)


__all__ = [
    "ProbeShelf",
    "ArrayWindows",
    "DesignConfig",
    "Phase",
    "Recipe",
    "RecipeStream",
    "Sparsity",
    "WindowSource",
    "cluster_books",
    "load_recipes",
    "make_design",
    "parse_design",
    "run_design",
    "save_recipes",
    "select_recipe",
]
