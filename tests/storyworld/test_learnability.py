"""The planted signal is learnable: a word n-gram trained with the helpful books beats one trained without them by
more than three standard errors on their items, and misleading books measurably hurt the facts they contradict."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.storyworld.learnability import ablation, accuracy, paired
from bookmix.storyworld.ngram import NGramScorer


def test_fact_books_help_their_items_by_more_than_three_standard_errors(world):
    e = ablation(world, "fact_recall", "helps")
    assert e.n_items == 192
    assert set(e.removed) == set(world.book_names(kind="fact"))
    assert e.acc_with > 0.8  # all but the contradicted facts are learned
    assert e.acc_without < 0.35  # chance is 1/4; the misleading books' false values pull some below it
    assert e.diff > 3 * e.se and e.diff > 0.5
    assert e.logprob_diff > 3 * e.logprob_se


def test_misleading_books_hurt_the_facts_they_contradict(world):
    e = ablation(world, "fact_recall", "hurts")
    assert set(e.removed) == set(world.book_names(kind="misleading"))
    assert e.n_items == 24
    assert e.acc_without > 0.9
    assert e.diff < -3 * e.se
    assert e.logprob_diff < -3 * e.logprob_se


def test_ngram_is_a_normalised_interpolated_model():
    texts = ["Bralo lives in Quenmar . Tiso lives in Dar .", "Bralo lives in Quenmar . Mela walks to Dar ."]
    lm = NGramScorer(texts, order=4)
    words = list(lm.vocab)
    for history in (["Bralo", "lives", "in"], ["x", "Bralo", "lives"], [".", "walks", "to"], ["to", "Dar", "unseen"]):
        h = np.array([[lm.vocab.get(w, 0) for w in history]] * (len(words) + 1))
        t = np.array([lm.vocab[w] for w in words] + [0])  # every word plus the unknown-word id
        p = np.exp(lm.word_logprobs(h, t))
        assert p.sum() <= 1.0 + 1e-9 and p.sum() > 0.9, (history, p.sum())
    lp = lm.logprobs(["Bralo lives in", "Bralo lives in", "Tiso lives in"], [" Quenmar", " Dar", " Dar"])
    assert lp[0] > lp[1]
    assert lp[2] > lp[1]


def test_scoring_counts_ties_as_chance():
    class Flat:
        def logprobs(self, contexts, continuations):
            return np.zeros(len(contexts))

    from bookmix.storyworld.items import Item

    items = [Item(id="x", group="g", context="c", choices=[" a", " b", " c", " d"], answer=2, helps=[])]
    score, _ = accuracy(Flat(), items)
    assert score.tolist() == [0.25]
    assert paired(np.array([1.0, 1.0, 0.0]), np.array([0.0, 0.0, 0.0])) == pytest.approx(
        (2 / 3, np.std([1, 1, 0], ddof=1) / np.sqrt(3))
    )
