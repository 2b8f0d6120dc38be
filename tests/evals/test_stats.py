"""Bootstrap standard errors agree with the textbook ones where those exist."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.evals.stats import bootstrap, mean_of, resample_indices, weighted_sum
from bookmix.evals.tasks.base import MetricData


def test_accuracy_stderr_matches_binomial():
    rng = np.random.default_rng(0)
    hits = rng.random(400) < 0.3
    est = bootstrap(MetricData.mean(hits), resample_indices(400, 2000, 1))
    p = hits.mean()
    assert est.value == pytest.approx(p)
    assert est.stderr == pytest.approx(np.sqrt(p * (1 - p) / 400), rel=0.1)
    assert est.n == 400


def test_ratio_metric_and_subsets():
    num, den = np.array([2.0, 4.0, 6.0, 8.0]), np.array([1.0, 1.0, 2.0, 4.0])
    est = bootstrap(MetricData(num, den), resample_indices(4, 500, 0))
    assert est.value == pytest.approx(20 / 8)
    mask = np.array([1, 0, 1, 0])
    sub = bootstrap(MetricData.mean(np.array([1.0, 9.0, 3.0, 9.0]), mask=mask), resample_indices(4, 500, 0))
    assert sub.value == pytest.approx(2.0) and sub.n == 2
    assert np.isnan(sub.replicates).any()  # some resamples hold no subset item: left out of the stderr
    assert np.isfinite(sub.stderr)


def test_same_seed_same_errors_and_combinations():
    x = np.random.default_rng(3).normal(size=200)
    a = bootstrap(MetricData.mean(x), resample_indices(200, 300, 5))
    b = bootstrap(MetricData.mean(x), resample_indices(200, 300, 5))
    assert a.stderr == b.stderr
    neg = bootstrap(MetricData.mean(-x), resample_indices(200, 300, 5))
    assert weighted_sum([a, neg], [1.0, 1.0]).stderr == pytest.approx(0.0, abs=1e-12)  # perfectly anti-correlated
    assert weighted_sum([a, a], [1.0, 1.0]).stderr == pytest.approx(2 * a.stderr)
    assert mean_of([a, neg]).value == pytest.approx(0.0, abs=1e-12)
