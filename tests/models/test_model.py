"""The LLaMA-style model: exact parameter counts, the loss, causality, seeded initialisation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from bookmix.models.config import PRESETS, ModelConfig, preset
from bookmix.models.model import IGNORE_INDEX, LM

TINY = ModelConfig(vocab_size=97, n_layer=2, n_head=4, d_model=32, block_size=16)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_parameter_counts_are_exact(name):
    cfg = preset(name, vocab_size=512)
    with torch.device("meta"):  # shapes only: the 1B preset costs nothing to build
        model = LM(cfg)
    assert sum(p.numel() for p in model.parameters()) == cfg.total_params
    assert model.num_params() == cfg.total_params
    assert model.num_params(non_embedding=True) == cfg.non_embedding_params


@pytest.mark.parametrize(
    "overrides", [{"tie_embeddings": False}, {"n_kv_head": 2}, {"d_ff": 40}, {"tie_embeddings": False, "n_kv_head": 1}]
)
def test_variant_parameter_counts_are_exact(overrides):
    cfg = dataclasses.replace(TINY, **overrides)
    model = LM(cfg)
    assert model.num_params() == cfg.total_params
    assert model.num_params(non_embedding=True) == cfg.non_embedding_params


def test_hf_llama_parameter_names():
    names = set(LM(TINY).state_dict())
    assert "model.embed_tokens.weight" in names and "model.norm.weight" in names
    for part in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                 "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"):
        assert f"model.layers.1.{part}.weight" in names
    assert not any("rope" in n for n in names)  # derived buffers stay out of checkpoints


def test_forward_shapes_and_mean_cross_entropy():
    model = LM(TINY)
    idx = torch.randint(0, TINY.vocab_size, (3, 16), generator=torch.Generator().manual_seed(1))
    targets = torch.roll(idx, -1, dims=1)
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 16, TINY.vocab_size)
    expected = F.cross_entropy(logits.view(-1, TINY.vocab_size), targets.view(-1))
    torch.testing.assert_close(loss, expected)
    # An untrained model at init_std 0.02 is close to uniform over the vocabulary.
    assert abs(loss.item() - torch.log(torch.tensor(97.0)).item()) < 0.1
    assert model(idx)[1] is None


def test_ignored_targets_leave_the_loss():
    model = LM(TINY)
    idx = torch.randint(0, TINY.vocab_size, (2, 16), generator=torch.Generator().manual_seed(2))
    targets = torch.roll(idx, -1, dims=1)
    masked = targets.clone()
    masked[:, :10] = IGNORE_INDEX
    logits, loss = model(idx, masked)
    expected = F.cross_entropy(logits[:, 10:].reshape(-1, TINY.vocab_size), targets[:, 10:].reshape(-1))
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(loss, model(idx, targets)[1])


@pytest.mark.parametrize("kv", [None, 2])
def test_attention_is_causal(kv):
    model = LM(dataclasses.replace(TINY, n_kv_head=kv)).eval()
    idx = torch.randint(0, TINY.vocab_size, (1, 16), generator=torch.Generator().manual_seed(3))
    changed = idx.clone()
    changed[0, 9:] = (changed[0, 9:] + 1) % TINY.vocab_size
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :9], b[:, :9])
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_initialisation_depends_on_the_seed_only():
    torch.manual_seed(123)
    a = LM(TINY, seed=5).state_dict()
    torch.manual_seed(456)  # the global RNG must not matter
    b = LM(TINY, seed=5).state_dict()
    c = LM(TINY, seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.layers.0.self_attn.q_proj.weight"], c["model.layers.0.self_attn.q_proj.weight"])
    assert torch.all(a["model.norm.weight"] == 1)
    # Residual projections start smaller: std / sqrt(2 · n_layer).
    o_std = a["model.layers.0.self_attn.o_proj.weight"].std().item()
    q_std = a["model.layers.0.self_attn.q_proj.weight"].std().item()
    assert o_std < q_std * 0.75


def test_tied_head_shares_the_embedding():
    model = LM(TINY)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    untied = LM(dataclasses.replace(TINY, tie_embeddings=False))
    assert untied.lm_head.weight is not untied.model.embed_tokens.weight


def test_too_long_input_is_refused():
    with pytest.raises(ValueError, match="block_size"):
        LM(TINY)(torch.zeros(1, 17, dtype=torch.long))
