"""choice_prob: the true candidate's probability among its item's candidates."""

from __future__ import annotations

import numpy as np
import pytest

from bookmix.evals.tasks.base import choice_prob


def test_probability_of_the_true_candidate_among_its_item():
    # item 0: three candidates, true is the second; item 1: two candidates, true is the first
    logprob = np.array([np.log(0.1), np.log(0.3), np.log(0.1), -1000.0, -1001.0])
    owner = np.array([0, 0, 0, 1, 1])
    prob = choice_prob(logprob, owner, np.array([1, 3]), 2)
    assert prob[0] == pytest.approx(0.6)  # 0.3 / (0.1 + 0.3 + 0.1): sums of tiny probabilities stay exact
    assert prob[1] == pytest.approx(1 / (1 + np.exp(-1.0)))
    equal = choice_prob(np.zeros(4), np.array([0, 0, 0, 0]), np.array([2]), 1)
    assert equal[0] == pytest.approx(0.25)  # no preference: chance
