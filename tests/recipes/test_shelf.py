"""The probe shelf in a recipe's stream: a fixed token share, spread evenly, every shelf window read equally, the same
after export; a clear error when it does not fit; recipes without a shelf keep their ids; English and Russian."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.errors import BookmixError, ConfigError
from bookmix.recipes import ProbeShelf, Recipe, RecipeStream
from bookmix.recipes.shelf import SHELF_SOURCE, shelf_tokens

SMALL = {"fact_books": 1, "people_per_book": 1, "rule_books": 1, "tokens_per_book": 200}


def test_recipe_without_shelf_keeps_its_id_and_a_shelf_changes_it(train_ids):
    plain = Recipe(books=train_ids[:3])
    assert "shelf" not in plain.content() and "shelf" not in plain.to_dict()
    shelved = Recipe(books=train_ids[:3], shelf=ProbeShelf())
    assert shelved.id != plain.id
    again = Recipe.from_dict(shelved.to_dict())
    assert again.id == shelved.id and again.shelf == ProbeShelf()
    with pytest.raises(ConfigError, match=r"shelf\.share.*\(0, 0\.5\]"):
        Recipe.from_dict({"books": train_ids[:3], "shelf": {"share": 0.7}})
    with pytest.raises(ConfigError, match=r"shelf\.langs"):
        Recipe.from_dict({"books": train_ids[:3], "shelf": {"langs": ["de"]}})


def test_shelf_share_spread_and_reads(small_lib, train_ids, tmp_path):
    T = 16
    base = Recipe(books=train_ids, epochs=2)
    plain = base.stream(small_lib, T)
    spec = ProbeShelf(share=0.2, **SMALL)
    s = base.with_changes(shelf=spec).stream(small_lib, T)
    src = s.window_index()[:, 0]
    is_shelf = src == SHELF_SOURCE
    assert s.n_windows == plain.n_windows + is_shelf.sum()
    assert abs(is_shelf.mean() - 0.2) < 0.01
    for quarter in np.array_split(is_shelf, 4):  # the same share at every point of training
        assert abs(quarter.mean() - 0.2) < 0.03
    assert sum(s.plan.epoch_windows) == s.n_windows
    # The recipe's own windows keep their order; the shelf's are read equally often (counts differ by at most one).
    assert np.array_equal(s.window_index()[~is_shelf], plain.window_index())
    offsets, counts = np.unique(s.window_index()[is_shelf, 1], return_counts=True)
    assert counts.max() - counts.min() <= 1
    tokens = shelf_tokens(spec, small_lib)
    assert len(offsets) == (len(tokens) - 1) // T  # every shelf window is read
    w = s.windows(0, s.n_windows)
    text = small_lib.decode(w[is_shelf][np.argsort(s.window_index()[is_shelf, 1], kind="stable")][0])
    assert "lives in" in text or "Almanac" in text
    s.export(tmp_path / "order.npz")
    again = RecipeStream.from_export(small_lib, tmp_path / "order.npz")
    assert np.array_equal(again.windows(0, again.n_windows), w)


def test_shelf_that_does_not_fit_the_budget_is_a_clear_error(small_lib, train_ids):
    r = Recipe(books=train_ids[:1], shelf=ProbeShelf(share=0.01))
    with pytest.raises(BookmixError, match=r"shelf does not fit the token budget.*raise shelf\.share to ≥"):
        r.stream(small_lib, 16)


def test_russian_and_mixed_shelves_and_exclusions(small_lib, train_ids):
    ru = ProbeShelf(langs=["ru"], **SMALL)
    shelf = ru.build()
    assert shelf.names == ["ru/fact_000", "ru/rule_000"]
    assert all(any("а" <= ch <= "я" for ch in b.text) for b in shelf.books)
    assert {p.kind for p in shelf.probes} == {"fact_recall", "logical_transfer", "synthesis"}
    assert all(p.lang == "ru" and "поэтому" in p.question.context for p in shelf.probes if p.kind != "fact_recall")
    mixed = ProbeShelf(langs=["en", "ru"], **SMALL)
    assert mixed.build().names == ["en/fact_000", "en/rule_000", "ru/fact_000", "ru/rule_000"]
    full = shelf_tokens(mixed, small_lib)
    cut = shelf_tokens(mixed.model_copy(update={"exclude": ["ru/rule_000"]}), small_lib)
    assert 0 < len(cut) < len(full)
    assert "поэтому" not in small_lib.decode(cut) and "поэтому" in small_lib.decode(full)
    with pytest.raises(BookmixError, match=r"shelf\.exclude: unknown shelf book\(s\) ru/rule_009.*ru/fact_000"):
        ProbeShelf(langs=["ru"], exclude=["ru/rule_009"], **SMALL).build()
    s = Recipe(books=train_ids, epochs=2, shelf=ProbeShelf(langs=["en", "ru"], share=0.3, **SMALL)).stream(
        small_lib, 16
    )
    assert (s.window_index()[:, 0] == SHELF_SOURCE).any()


def test_probe_shelf_probes_are_deterministic_and_two_hop_halves_live_in_different_books():
    a, b = ProbeShelf().build(), ProbeShelf().build()
    assert [bk.text for bk in a.books] == [bk.text for bk in b.books] and a.probes == b.probes
    synth = [p for p in a.probes if p.kind == "synthesis"]
    assert len(synth) == 24 and len([p for p in a.probes if p.kind == "fact_recall"]) == 48
    for p in synth:
        fact_book, rule_book = p.helps
        assert fact_book.startswith("en/fact_") and rule_book.startswith("en/rule_")
        assert len(p.second_contexts) == len(p.first.choices)
        assert p.second_contexts[p.first.answer] == p.question.context
        assert p.first.choices[p.first.answer].strip() in p.question.context
