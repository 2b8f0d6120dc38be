"""models.head.head_loss: the chunked output layer + cross-entropy equals the plain one, loss and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bookmix.models.config import ModelConfig
from bookmix.models.head import IGNORE_INDEX, head_loss
from bookmix.models.model import LM


def _reference(x: torch.Tensor, w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    K, N, _ = x.shape
    tok = F.cross_entropy(torch.bmm(x, w.mT).float().reshape(K * N, -1), t.reshape(-1), ignore_index=IGNORE_INDEX,
                          reduction="none").view(K, N)
    return tok.sum(dim=1) / (t != IGNORE_INDEX).sum(dim=1).clamp_min(1)


@pytest.mark.parametrize("block", [(1, 1), (1, 7), (2, 50), (3, 50), (2, 13), (3, 4096)])
def test_blocked_loss_and_gradients_equal_the_plain_ones(block: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(0)
    K, N, C, V = 3, 50, 16, 37
    x = torch.randn(K, N, C, generator=gen, requires_grad=True)
    w = torch.randn(K, V, C, generator=gen, requires_grad=True)
    t = torch.randint(0, V, (K, N), generator=gen)
    t[1, :10] = IGNORE_INDEX  # some rows left out
    t[2, :] = IGNORE_INDEX  # a model with nothing to count: loss 0, no gradient
    weights = torch.tensor([0.3, 1.7, 2.0])  # per-model upstream gradients, as packed_step's shares give

    (head_loss(x, w, t, block) * weights).sum().backward()
    gx, gw = x.grad.clone(), w.grad.clone()
    x.grad = w.grad = None
    ref = _reference(x, w, t)
    (ref * weights).sum().backward()

    assert torch.allclose(head_loss(x, w, t, block), ref, atol=1e-5)
    assert head_loss(x, w, t, block)[2] == 0
    assert torch.allclose(gx, x.grad, atol=1e-6) and torch.allclose(gw, w.grad, atol=1e-6)
    assert gx[2].abs().max() == 0 and gx[1, :10].abs().max() == 0


def test_without_grad_it_only_scores() -> None:
    x, w = torch.randn(2, 9, 4), torch.randn(2, 11, 4)
    t = torch.randint(0, 11, (2, 9))
    with torch.no_grad():
        out = head_loss(x.requires_grad_(), w, t, (1, 2))
    assert out.grad_fn is None and torch.allclose(out, _reference(x, w, t), atol=1e-5)


def test_lm_loss_only_path_matches_the_logits_path() -> None:
    for tied in (True, False):
        cfg = ModelConfig(vocab_size=97, n_layer=2, n_head=2, d_model=32, block_size=16, tie_embeddings=tied)
        lm = LM(cfg, seed=1)
        idx = torch.randint(0, 97, (3, 17), generator=torch.Generator().manual_seed(2))
        logits, ref = lm(idx[:, :-1], idx[:, 1:])
        ref.backward()
        ref_grads = {n: p.grad.clone() for n, p in lm.named_parameters()}
        lm.zero_grad()
        none, loss = lm(idx[:, :-1], idx[:, 1:], logits=False)
        loss.backward()
        assert none is None and logits.shape == (3, 16, 97)
        assert torch.allclose(loss, ref, atol=1e-5)
        for n, p in lm.named_parameters():
            assert torch.allclose(p.grad, ref_grads[n], atol=1e-5), n


def test_under_bf16_autocast_it_stays_close_to_float32() -> None:
    gen = torch.Generator().manual_seed(3)
    x, w = torch.randn(2, 64, 32, generator=gen), torch.randn(2, 50, 32, generator=gen) * 0.1
    t = torch.randint(0, 50, (2, 64), generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = head_loss(x.requires_grad_(), w.requires_grad_(), t, (1, 16))
    low.sum().backward()
    assert low.dtype == torch.float32 and x.grad.dtype == torch.float32 and w.grad.dtype == torch.float32
    assert torch.allclose(low, _reference(x.detach(), w.detach(), t), rtol=2e-2)


def test_blocks_take_whole_models_while_they_fit_then_split_tokens() -> None:
    from bookmix.models.head_blocks import HEAD_BLOCK_BYTES, HEAD_MIN_TOKENS, head_blocks

    cpu = "cpu"
    budget = HEAD_BLOCK_BYTES["cpu"]
    n = 1024
    vocab = budget // (4 * n)  # one model's logits are exactly the budget
    assert head_blocks(8, n, vocab, cpu) == (1, n)
    assert head_blocks(8, n, vocab // 4, cpu) == (4, n)
    assert head_blocks(2, n, vocab // 4, cpu) == (2, n)
    assert head_blocks(8, n, vocab * 2, cpu) == (1, n // 2)
    assert head_blocks(1, n, vocab * 1000, cpu) == (1, HEAD_MIN_TOKENS)
