"""The planted signal is learnable by a real nano LM (issue 3): trained by the real trainer on a Recipe of the
storyworld's books, scored by the eval suite's Scorer, a nano model that read the fact books beats one that did not,
on their items, by more than three standard errors of the paired difference."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.errors import BookmixError
from bookmix.storyworld import generate
from bookmix.storyworld.learnability import ablation, fit_on
from bookmix.storyworld.nano import NanoFit


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def nano_world(tmp_path_factory):
    library = pytest.importorskip("bookmix.library", reason="the library room is not available")
    root = tmp_path_factory.mktemp("nano")
    # 20 books of ~4k tokens: 8 fact books, the rest rules, stories, noise and misleading books. Two people per fact
    # book: 64 facts, each read ~100 times in two epochs — about what a nano model needs to store a fact (with the
    # default six people a fact is read a third as often and the model only reaches ~40%).
    manifest = generate(root / "sw", books=20, seed=7, tokens_per_book=4000, people_per_fact_book=2)
    library.ingest(**manifest.ingest_kwargs(), library=root / "lib", tokenizer="train:2048", workers=1)
    return manifest, root


@pytest.mark.slow
def test_nano_trained_with_the_fact_books_beats_one_trained_without_them(nano_world):
    manifest, root = nano_world
    fit = NanoFit(manifest, root / "lib", root / "runs", seed=0)
    e = ablation(manifest, "fact_recall", "helps", fit=fit)
    print(f"\nnano fact_recall: with {e.acc_with:.3f} without {e.acc_without:.3f} diff {e.diff:+.3f} ± {e.se:.3f} "
          f"(z {e.z:.1f}); Δlog p {e.logprob_diff:+.2f} ± {e.logprob_se:.2f} nats; "
          f"train s {[round(r.seconds, 1) for r in fit.results.values()]}")  # fmt: skip
    assert e.n_items == 64 and set(e.removed) == set(manifest.book_names(kind="fact"))
    assert e.diff > 3 * e.se
    assert e.acc_without < 0.4  # chance is 1/4: without the books the model only guesses
    assert e.logprob_diff > 3 * e.logprob_se

    # Two trials, one per book set, each a real trainer run over a Recipe with the same seed (their training time is
    # measured by bench/storyworld_nano.py, not asserted here).
    assert len(fit.results) == 2
    assert all(r.status == "completed" for r in fit.results.values())
    with_id, without_id = (fit.recipe(books).id for books in (
        manifest.book_names(holdout=False),
        [b for b in manifest.book_names(holdout=False) if b not in e.removed],
    ))  # fmt: skip
    assert set(fit.results) == {with_id, without_id}
    assert fit.results[with_id].tokens > fit.results[without_id].tokens

    # Fitting the same books again reuses the finished trial folder (the trainer's resume): no second training.
    before = (root / "runs" / with_id / "result.json").stat().st_mtime_ns
    scorer = fit_on(manifest, fit)
    assert (root / "runs" / with_id / "result.json").stat().st_mtime_ns == before
    items = manifest.items("fact_recall")[:8]
    lp = scorer.logprobs([it.context for it in items], [it.choices[it.answer] for it in items])
    assert lp.shape == (8,) and np.all(lp < 0) and np.all(np.isfinite(lp))


def test_nano_fit_names_unknown_books_and_foreign_libraries(nano_world, tmp_path):
    manifest, root = nano_world
    fit = NanoFit(manifest, root / "lib", tmp_path / "runs")
    with pytest.raises(BookmixError, match="no book named 'nope.txt'"):
        fit(["nope.txt"])
    with pytest.raises(BookmixError, match="at least one book"):
        fit([])
    other = generate(tmp_path / "other", books=6, seed=99, tokens_per_book=500)
    with pytest.raises(BookmixError, match="has no book from storyworld file"):
        NanoFit(other, root / "lib", tmp_path / "runs2")
