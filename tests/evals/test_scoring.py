"""Batched scoring equals scoring each pair alone with the real LM, whatever the batching and padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bookmix.evals.scoring import Scorer
from bookmix.models.config import ModelConfig
from bookmix.models.model import LM

CFG = ModelConfig(vocab_size=97, n_layer=2, n_head=2, d_model=32, block_size=24)


@pytest.fixture(scope="module")
def model():
    return LM(CFG, seed=3).eval()


def reference(model: LM, ctx: np.ndarray, cont: np.ndarray) -> tuple[float, bool]:
    """One pair, no batching: the LM's own cross-entropy over the continuation's targets."""
    full = torch.tensor(np.concatenate([ctx, cont])[-(CFG.block_size + 1):])
    n = min(len(cont), CFG.block_size)
    with torch.no_grad():
        logits, _ = model(full[None, :-1])
    tail_logits, targets = logits[0, -n:], full[1:][-n:]
    lp = -F.cross_entropy(tail_logits, targets, reduction="sum").item()
    return lp, bool((tail_logits.argmax(-1) == targets).all())


def random_pairs(seed: int, n: int):
    rng = np.random.default_rng(seed)
    ctxs = [rng.integers(0, CFG.vocab_size, rng.integers(1, 40)) for _ in range(n)]  # some exceed block_size
    conts = [rng.integers(0, CFG.vocab_size, rng.integers(1, 8)) for _ in range(n)]
    return ctxs, conts


def test_matches_per_pair_reference_with_any_batch_size(model):
    ctxs, conts = random_pairs(0, 23)
    expected = np.array([reference(model, c, t)[0] for c, t in zip(ctxs, conts, strict=True)])
    for bs in (1, 5, 64):
        s = Scorer.for_model(model, batch_size=bs).score(ctxs, conts)
        np.testing.assert_allclose(s.logprob, expected, rtol=1e-4, atol=1e-4)
        assert s.n_tokens.tolist() == [len(t) for t in conts]
        assert np.all(s.logprob < 0)


def test_left_truncation_keeps_the_end(model):
    rng = np.random.default_rng(1)
    ctx, cont = rng.integers(0, 97, 60), rng.integers(0, 97, 5)
    scorer = Scorer.for_model(model)
    long = scorer.score([ctx], [cont]).logprob[0]
    short = scorer.score([ctx[-(CFG.block_size + 1 - 5):]], [cont]).logprob[0]  # exactly what fits
    assert long == pytest.approx(short, abs=1e-5)
    assert long == pytest.approx(reference(model, ctx, cont)[0], abs=1e-4)


def test_greedy_flag_is_exact_match_of_every_token(model):
    scorer = Scorer.for_model(model)
    ctx = np.array([5, 9, 11])
    greedy = scorer.generate(ctx, max_new_tokens=4)[0]
    s = scorer.score([ctx, ctx], [greedy, (greedy + 1) % 97], greedy=True)
    assert s.greedy.tolist() == [True, False]
    assert s.logprob[0] > s.logprob[1]


def test_plain_logits_function_and_errors(model):
    scorer = Scorer(lambda idx: model(idx)[0], block_size=CFG.block_size)
    ctxs, conts = random_pairs(2, 4)
    np.testing.assert_allclose(scorer.score(ctxs, conts).logprob,
                               [reference(model, c, t)[0] for c, t in zip(ctxs, conts, strict=True)], atol=1e-4)
    with pytest.raises(ValueError, match="empty context"):
        scorer.score([np.array([], dtype=np.int64)], [np.array([1])])
    assert scorer.score([], []).logprob.shape == (0,)


def test_sampling_is_seeded(model):
    scorer = Scorer.for_model(model)
    a = scorer.generate(np.array([1, 2]), 6, n=3, temperature=1.0, seed=7)
    b = scorer.generate(np.array([1, 2]), 6, n=3, temperature=1.0, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(len(x) == 6 for x in a)
