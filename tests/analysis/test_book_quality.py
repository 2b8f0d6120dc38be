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


def test_cli_learns_from_a_campaign_store_over_a_scored_library(tmp_path, capsys) -> None:
    """A real library scored by `library score`, a real results store whose objective falls with the recipes' OCR
    noise: `library learn-weights` finds q_ocr's negative weight and its expression drives `library select`."""
    import json

    from bookmix.campaign.spec import TrialResult, TrialSpec
    from bookmix.campaign.store import Store
    from bookmix.cli import main
    from bookmix.library.score import score
    from support.library import make_library, ocr_noise

    rng = np.random.default_rng(0)
    words = ["the", "sea", "was", "calm", "and", "she", "walked", "along", "shore", "with", "her", "old", "dog"]
    texts = {}
    for i in range(24):
        text = " ".join(" ".join(rng.choice(words, 9)).capitalize() + "." for _ in range(120))
        texts[f"b{i:02d}"] = ocr_noise(text, 0.02 * (i % 6), seed=i) if i % 6 else text
    lib = make_library(tmp_path / "l", texts, vocab_size=300, lang="en")
    score(lib, windows=4, window_tokens=64)
    q = {b.id: b.extra["q_ocr"] for b in lib.books()}
    ids = sorted(q)
    folder = tmp_path / "camp"
    with Store(folder / "campaign.sqlite") as store:
        store.record_objective({"objective": 1.0}, "maximize")  # as the driver does when a campaign starts
        recipes = []
        for k in range(40):
            books = sorted(rng.choice(ids, 6, replace=False).tolist())
            recipes.append({"id": f"r{k:03d}", "books": books})
        store.add_recipes(recipes, round=0)
        store.add_trials(
            TrialSpec(trial_id=f"t{k:03d}", recipe=r, seed=0, stage="search", round=0, model={}, train={},
                      library=str(lib.path), suite="", out_dir="")
            for k, r in enumerate(recipes)
        )  # fmt: skip
        for k, r in enumerate(recipes):
            obj = 1.0 - 20 * float(np.mean([q[b] for b in r["books"]])) + float(rng.normal(0, 0.01))
            store.record(TrialResult(trial_id=f"t{k:03d}", state="completed", objective=obj, objective_stderr=0.01))
    assert main(["library", "learn-weights", str(folder), "--signal", "q_ocr", "--signal", "q_read", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    w = dict(zip(out["signals"], out["weights"], strict=True))
    assert w["q_ocr"] < 0 and out["loo_r2"] > 0.5 and out["n_trials"] == 40 and "q_ocr" in out["expression"]
    assert (
        main(["library", "select", "--library", str(lib.path), "--top", "4", "--by", out["expression"], "--json"]) == 0
    )
    chosen = json.loads(capsys.readouterr().out)["ids"]
    assert max(q[b] for b in chosen) <= sorted(q.values())[len(q) // 2]  # the cleanest books come first
