"""PackedLM: slot k computes exactly what model k computes alone, and slots come and go without touching the others."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bookmix.models.model import IGNORE_INDEX, LM
from bookmix.models.packed import PackedLM

from .data import TOY


@pytest.mark.parametrize("shape", [TOY, dataclasses.replace(TOY, n_head=4, n_kv_head=2, tie_embeddings=False)],
                         ids=["tied", "gqa-untied"])
def test_each_slot_matches_its_model_alone(shape):
    models = [LM(shape, seed=s) for s in (0, 1, 2)]
    pack = PackedLM(shape, 3)
    for k, lm in enumerate(models):
        pack.set_member(k, dict(lm.named_parameters()))
    assert [n for n, _ in pack.named_parameters()] == [n for n, _ in models[0].named_parameters()]
    assert sum(p.numel() for p in pack.parameters()) == 3 * shape.total_params

    idx = torch.randint(0, shape.vocab_size, (3, 4, 17), generator=torch.Generator().manual_seed(0))
    logits, loss = pack(idx[..., :-1], idx[..., 1:])
    assert logits.shape == (3, 4, 16, shape.vocab_size) and loss.shape == (3,)
    for k, lm in enumerate(models):
        alone_logits, alone_loss = lm(idx[k, :, :-1], idx[k, :, 1:])
        torch.testing.assert_close(logits[k], alone_logits, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(loss[k], alone_loss, rtol=1e-5, atol=1e-6)
    assert len({round(x, 4) for x in loss.tolist()}) == 3  # different seeds, different models


def test_gradients_stay_in_their_slot():
    models = [LM(TOY, seed=s) for s in (0, 1)]
    pack = PackedLM(TOY, 2)
    for k, lm in enumerate(models):
        pack.set_member(k, dict(lm.named_parameters()))
    idx = torch.randint(0, TOY.vocab_size, (2, 2, 9), generator=torch.Generator().manual_seed(1))
    _, loss = pack(idx[..., :-1], idx[..., 1:])
    loss[1].backward()  # model 1's loss alone: model 0 must get no gradient at all
    for name, p in pack.named_parameters():
        assert p.grad[0].abs().max() == 0, name
    models[1](idx[1, :, :-1], idx[1, :, 1:])[1].backward()
    for (name, p), q in zip(pack.named_parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(p.grad[1], q.grad, rtol=1e-4, atol=1e-7, msg=name)


def test_padding_rows_are_ignored_and_an_empty_model_scores_zero():
    lm = LM(TOY, seed=3)
    pack = PackedLM(TOY, 2)
    pack.set_member(0, dict(lm.named_parameters()))
    pack.set_member(1, dict(lm.named_parameters()))
    idx = torch.randint(0, TOY.vocab_size, (2, 3, 9), generator=torch.Generator().manual_seed(2))
    targets = idx[..., 1:].clone()
    targets[0, 2:] = IGNORE_INDEX  # model 0 has 2 real windows, model 1 none
    targets[1] = IGNORE_INDEX
    _, loss = pack(idx[..., :-1], targets)
    _, alone = lm(idx[0, :2, :-1], idx[0, :2, 1:])
    torch.testing.assert_close(loss[0], alone, rtol=1e-5, atol=1e-6)
    assert loss[1].item() == 0.0


def test_keep_drops_slots_and_the_rest_compute_as_before():
    models = [LM(TOY, seed=s) for s in (0, 1, 2)]
    pack = PackedLM(TOY, 3)
    for k, lm in enumerate(models):
        pack.set_member(k, dict(lm.named_parameters()))
    pack.keep([0, 2])
    assert pack.k == 2 and pack.model.embed_tokens.weight.shape[0] == 2
    torch.testing.assert_close(pack.member(1)["model.norm.weight"], models[2].model.norm.weight.detach())
    idx = torch.randint(0, TOY.vocab_size, (2, 2, 9), generator=torch.Generator().manual_seed(3))
    _, loss = pack(idx[..., :-1], idx[..., 1:])
    torch.testing.assert_close(loss[1], models[2](idx[1, :, :-1], idx[1, :, 1:])[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pack has 2"):
        pack(torch.cat([idx, idx[:1]])[..., :-1])


def test_the_loss_only_path_gives_each_model_its_own_loss_and_gradients():
    """``logits=False`` (what a training step uses: models.head) equals the logits path, per slot."""
    shape = dataclasses.replace(TOY, tie_embeddings=False)
    pack = PackedLM(shape, 2)
    for k in range(2):
        pack.set_member(k, dict(LM(shape, seed=k).named_parameters()))
    idx = torch.randint(0, shape.vocab_size, (2, 3, 17), generator=torch.Generator().manual_seed(4))
    targets = idx[..., 1:].clone()
    targets[1, 0] = IGNORE_INDEX
    _, ref = pack(idx[..., :-1], targets)
    (ref * torch.tensor([1.0, 3.0])).sum().backward()
    ref_grads = {n: p.grad.clone() for n, p in pack.named_parameters()}
    pack.zero_grad()
    none, loss = pack(idx[..., :-1], targets, logits=False)
    (loss * torch.tensor([1.0, 3.0])).sum().backward()
    assert none is None
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    for n, p in pack.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[n], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_packed_linear_gradients_match_autograd_through_bmm(autocast):
    from bookmix.models.packed import PackedLinear

    gen = torch.Generator().manual_seed(5)
    lin = PackedLinear(3, 16, 8)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(3, 8, 16, generator=gen))
    x = torch.randn(3, 10, 16, generator=gen, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        ours, plain = lin(x), torch.bmm(x, lin.weight.mT)
    up = torch.randn(ours.shape, generator=gen).to(ours.dtype)
    got = torch.autograd.grad(ours, (x, lin.weight), up)
    want = torch.autograd.grad(plain, (x, lin.weight), up)
    assert ours.dtype == plain.dtype
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert got[1].is_contiguous()  # made in the weight's own layout: no copy into a contiguous gradient
