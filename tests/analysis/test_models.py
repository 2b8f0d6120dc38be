"""Book effects, factor effects, the surrogate and validity against a planted truth."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from bookmix.analysis.datamodel import fit_book_model
from bookmix.analysis.features import book_info
from bookmix.analysis.predictors import fit_predictors
from bookmix.analysis.ridge import centre_kernel, fit_dual_ridge
from bookmix.analysis.table import from_records
from bookmix.analysis.validity import pairwise_accuracy


def test_dual_ridge_equals_sklearn_ridge_with_intercept():
    rng = np.random.default_rng(0)
    x = (rng.random((60, 200)) < 0.1).astype(float)  # more columns than rows, like books vs trials
    y = x @ rng.normal(0, 1, 200) + 3.0 + rng.normal(0, 0.1, 60)
    fit = fit_dual_ridge(x @ x.T, y)
    beta = x.T @ fit.dual
    ref = Ridge(alpha=fit.alpha, fit_intercept=True).fit(x, y)
    np.testing.assert_allclose(beta, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(fit.fitted, ref.predict(x), atol=1e-8)
    assert abs(fit.dual.sum()) < 1e-8  # why X^T c needs no centring of X
    assert np.allclose(centre_kernel(x @ x.T).sum(axis=0), 0.0)


def test_book_effects_recover_the_planted_truth_with_covering_intervals(default_campaign, default_findings):
    truth = default_campaign.effects
    books = default_findings.books
    est = np.array([b["effect"] for b in books])
    true = np.array([truth[b["book"]] for b in books])
    true = true - true.mean()  # fixed set size: effects are relative to the average book
    assert np.corrcoef(est, true)[0, 1] > 0.97
    lo = np.array([b["ci"][0] for b in books])
    hi = np.array([b["ci"][1] for b in books])
    coverage = np.mean((lo <= true) & (true <= hi))
    assert coverage >= 0.8, coverage  # nominal 95%; ridge shrinkage costs a little
    assert np.all(hi - lo > 0)
    # Sorted best first; top and bottom lists are the two ends.
    assert np.all(np.diff(est) <= 0)
    assert default_findings.top_books[0]["book"] == books[0]["book"]
    assert default_findings.bottom_books[0]["book"] == books[-1]["book"]
    assert books[0]["title"].startswith("Book ")


def test_factor_effects_are_adjusted_and_cover_the_truth(default_findings):
    f = {row["factor"]: row for row in default_findings.factors}
    order = f["order=random"]  # planted: random is 0.3 worse than interleave
    assert order["unit"] == "vs order=interleave"
    assert order["ci"][0] <= -0.3 <= order["ci"][1] and order["clear"]
    keep = f["sparsity_keep"]  # planted: keep 0.5 costs 0.1 -> +0.05 per SD (0.25) of keep
    assert keep["ci"][0] <= 0.05 <= keep["ci"][1] and keep["effect"] > 0
    # chunk size and pattern move with keep in this campaign: reported as aliases, not as split effects
    assert default_findings.model["aliased_factors"] == {
        "sparsity_chunk": "sparsity_keep", "sparsity_pattern=stride": "sparsity_keep"
    }  # fmt: skip
    assert "mean year" in f and "share lang=ru" in f
    assert not f["mean year"]["clear"] or abs(f["mean year"]["effect"]) < 0.05  # no planted year effect


def test_validity_high_on_signal_and_chance_on_noise(planted, default_findings):
    v = default_findings.validity
    for name in ("datamodel", "surrogate", "lasso"):
        assert v[name]["spearman"] > 0.85 and v[name]["pairwise_accuracy"] > 0.8, (name, v[name])
    assert v["datamodel"]["folds"] == 5 and v["datamodel"]["n"] == 300
    from bookmix.analysis import AnalysisConfig, analyze

    noisy = planted(n_books=30, n_recipes=60, noise=0.0, seed=3)
    rng = np.random.default_rng(0)
    for r in noisy.records:  # replace the signal by pure noise: nothing should validate
        r["objective"] = float(rng.normal())
    f = analyze(noisy.records, None, AnalysisConfig(n_boot=50, lasso=False, propose=False))
    assert abs(f.validity["datamodel"]["spearman"]) < 0.3
    assert f.noise["objective"]["below_noise"] is True
    assert any("below the noise floor" in s for s in f.summary)


def test_pairwise_accuracy_counts_pairs_of_different_recipes():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    g = np.arange(4)
    assert pairwise_accuracy(y, y, g) == 1.0
    assert pairwise_accuracy(-y, y, g) == 0.0
    assert pairwise_accuracy(np.zeros(4), y, g) == 0.5
    assert pairwise_accuracy(y, y, np.zeros(4, dtype=int)) is None  # all one recipe: no pair counts


def test_surrogate_falls_back_to_sklearn_without_lightgbm(default_campaign, monkeypatch):
    table = from_records(default_campaign.records[:120])
    info = book_info(default_campaign.catalog, table.book_ids)
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm -> ImportError
    pred = fit_predictors(table, info, n_boot=0, lasso=False)
    assert pred.surrogate.kind == "hist_gradient_boosting"
    out = pred.predict(table.inclusion, table.settings)["surrogate"]
    assert np.corrcoef(out, table.objective)[0, 1] > 0.8


def test_book_model_on_a_wide_sparse_design_is_fast_and_sensible():
    # 300 trials over 2,000 books (15 each): far more books than trials; the strong books still come out on top.
    rng = np.random.default_rng(5)
    import scipy.sparse as sp

    n, p, k = 300, 2_000, 15
    cols = np.concatenate([rng.choice(p, k, replace=False) for _ in range(n)])
    x = sp.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), cols)), shape=(n, p))
    beta = np.zeros(p)
    counts = np.bincount(cols, minlength=p)
    strong = np.argsort(-counts, kind="stable")[:20]  # books seen in 5+ trials: enough to single them out
    beta[strong] = 1.0
    y = x @ beta + rng.normal(0, 0.1, n)
    bm = fit_book_model(x, np.zeros((n, 0)), y, np.arange(n), n_boot=100)
    assert bm.effect.shape == (p,) and bm.ci_low.shape == (p,)
    top = np.argsort(-bm.effect)[:20]
    assert len(set(top) & set(strong)) >= 16
    assert np.all(bm.effect[counts == 0] == 0) and (counts == 0).any()  # unseen books: no effect
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(bm.ci_low, bm.ci_high)
