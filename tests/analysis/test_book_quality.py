"""Learning which per-book signals predict a better model from trials, and using the result as a select expression."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from bookmix.analysis.book_quality import learn_signal_weights
from bookmix.errors import BookmixError


def _trials(n_books: int = 300, n_trials: int = 80, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"b{i:04d}" for i in range(n_books)]
    sig = {"q_good": rng.normal(0, 1, n_books), "q_idle": rng.normal(5, 2, n_books), "q_bad": rng.random(n_books)}
    sig["q_good"][:10] = np.nan  # unscored books are left out of a recipe's mean
    records = []
    for _ in range(n_trials):
        books = rng.choice(n_books, 20, replace=False)
        good = np.nanmean(sig["q_good"][books])
        obj = 1.0 * good - 3.0 * sig["q_bad"][books].mean() + rng.normal(0, noise)
        records.append({"recipe": {"books": [ids[b] for b in books]}, "objective": obj})
    return ids, sig, records


def test_weights_find_the_signals_that_matter_and_rank_books_by_them() -> None:
    ids, sig, records = _trials()
    w = learn_signal_weights(records, ids, sig, n_boot=100)
    got = dict(zip(w.signals, zip(w.weights, w.stderr, strict=True), strict=True))
    assert got["q_good"][0] > 4 * got["q_good"][1] > 0  # positive and well beyond its standard error
    assert got["q_bad"][0] < -4 * got["q_bad"][1] < 0
    assert abs(got["q_idle"][0]) < 3 * got["q_idle"][1] + 0.05
    assert w.loo_r2 > 0.5 and w.n_trials == 80
    # the expression runs in SQLite over the book columns and ranks a good, clean book above a poor, noisy one
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE books (id TEXT, q_good REAL, q_idle REAL, q_bad REAL)")
    con.executemany("INSERT INTO books VALUES (?, ?, ?, ?)", [("best", 2.0, 5.0, 0.0), ("worst", -2.0, 5.0, 1.0)])
    ranked = [r[0] for r in con.execute(f"SELECT id FROM books ORDER BY {w.expression(min_z=2)} DESC")]
    assert ranked == ["best", "worst"] and "q_idle" not in w.expression(min_z=2)


def test_no_signal_is_said_plainly() -> None:
    ids, sig, records = _trials(noise=0.05)
    rng = np.random.default_rng(1)
    shuffled = [{**r, "objective": float(rng.normal())} for r in records]
    assert learn_signal_weights(shuffled, ids, sig, n_boot=50).loo_r2 < 0.1
    with pytest.raises(BookmixError, match="usable trials"):
        learn_signal_weights(records[:4], ids, sig)
    with pytest.raises(BookmixError, match="not among"):
        learn_signal_weights([{"recipe": {"books": ["nope"]}, "objective": 1.0}] * 9, ids, sig)
