"""Item builders: scene-linking spans and entity-recall items obey their definitions, deterministically."""

from __future__ import annotations

import re

import numpy as np

from bookmix.evals.entities import build_entity_items, find_names
from bookmix.evals.passages import PassageSpec, build_passage_items

from .conftest import story

SPEC = PassageSpec(context_tokens=64, passage_tokens=16, gap_tokens=0, n_same_book=2, n_other_books=1, min_distance=500)


def test_passage_items_follow_the_spec():
    ids, counts = ["a", "b", "c", "tiny"], [5000, 3000, 2000, 50]
    items = build_passage_items(ids, counts, 60, SPEC, seed=4)
    assert len(items) == 60
    assert items == build_passage_items(ids, counts, 60, SPEC, seed=4)
    assert items != build_passage_items(ids, counts, 60, SPEC, seed=5)
    answers = [it["answer"] for it in items]
    assert len(set(answers)) == 4  # the true passage is not always in the same slot
    for it in items:
        book, start, length = it["context"]
        assert book != "tiny" and length == 64
        cands = it["candidates"]
        true = cands[it["answer"]]
        assert true == [book, start + 64, 16]
        others = [c for i, c in enumerate(cands) if i != it["answer"]]
        same = [c for c in others if c[0] == book]
        assert len(same) == 2 and len(others) == 3
        assert all(abs(c[1] - true[1]) >= 500 for c in same)
        assert all(0 <= c[1] <= dict(zip(ids, counts, strict=True))[c[0]] - 16 for c in cands)


def test_single_book_distractors_avoid_the_context():
    items = build_passage_items(["only"], [3000], 20, SPEC, seed=0)
    for it in items:
        ctx_start = it["context"][1]
        for c in it["candidates"]:
            assert c[0] == "only"
            assert c == it["candidates"][it["answer"]] or c[1] + 16 <= ctx_start or c[1] >= ctx_start + 64 + 16
    assert build_passage_items(["short"], [40], 5, SPEC, seed=0) == []


def test_names_found_in_english_and_russian():
    assert len(find_names(story(3))) == 4  # the book's four characters, not "In", "Then", "The", "After"
    ru = " ".join(["Утром Наташа пошла в сад, и там её ждал Пьер."] * 5 + ["Потом Пьер сказал, что Наташа ушла."] * 5)
    assert find_names(ru) == {"Наташа", "Пьер"}


def test_entity_items_name_seen_before_but_not_in_last_sentence():
    text = story(7, sentences=400)
    names = find_names(text)
    items = build_entity_items(text, names, 50, 600, np.random.default_rng(0))
    assert len(items) == 50
    for it in items:
        name = it["target"].strip()
        assert it["target"].startswith(" ") and name in names
        ctx = it["context"]
        last = re.split(r"[.!?…]", ctx)[-1]
        assert name not in last and name in ctx
        assert len(ctx) <= 600 and text.find(ctx + it["target"]) >= 0  # really a place in the book
    again = build_entity_items(text, names, 50, 600, np.random.default_rng(0))
    assert again == items
