"""The memory model against what torch really saves for backward."""

from __future__ import annotations

import pytest
import torch

from bookmix.errors import BookmixError
from bookmix.forecast.memory import (
    CONTEXT_BYTES,
    activation_bytes_per_token,
    estimate_memory,
    head_bytes,
    logits_bytes_per_token,
    matmul_weights,
    max_micro_batch,
)
from bookmix.models.config import ModelConfig, preset
from bookmix.models.model import LM


def saved_bytes(cfg: ModelConfig, batch: int, seq: int, dtype: str, logits: bool = True) -> int:
    """Bytes of every distinct storage autograd saves in one forward with loss, parameters excluded; ``logits=False``
    is the training path (``models.head``)."""
    model = LM(cfg)
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    idx = torch.randint(0, cfg.vocab_size, (batch, seq))
    cast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), cast:
        model(idx, idx, logits=logits)
    return sum(n for ptr, n in seen.items() if ptr not in own)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("kv", [None, 2])
def test_activations_match_saved_tensors(dtype, kv):
    cfg = ModelConfig(vocab_size=512, n_layer=3, n_head=8, n_kv_head=kv, d_model=128, block_size=64)
    batch, seq = 4, 64
    measured = saved_bytes(cfg, batch, seq, dtype)
    # of the logits' 12·V per token, the forward saves the FP32 log-probabilities (4·V); autocast's weight copies too
    predicted = batch * seq * (activation_bytes_per_token(cfg, dtype) + 4 * cfg.vocab_size)
    if dtype == "bf16":
        predicted += 2 * matmul_weights(cfg)
    assert predicted == pytest.approx(measured, rel=0.03)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_the_training_path_saves_activations_and_the_head_gradients(dtype):
    cfg = ModelConfig(vocab_size=512, n_layer=3, n_head=8, d_model=128, block_size=64)
    batch, seq = 4, 64
    measured = saved_bytes(cfg, batch, seq, dtype, logits=False)
    # no log-probabilities are saved; the head's two gradients are (head_bytes), and the head's bf16 input is not
    a = 2 if dtype == "bf16" else 4
    predicted = batch * seq * (activation_bytes_per_token(cfg, dtype) - a * cfg.d_model + 4 * cfg.d_model)
    predicted += 4 * cfg.vocab_size * cfg.d_model
    if dtype == "bf16":
        predicted += 2 * matmul_weights(cfg)
    assert predicted == pytest.approx(measured, rel=0.03)


def test_breakdown_adds_up_and_grows_with_batch():
    cfg = preset("small")
    one = estimate_memory(cfg, 1)
    eight = estimate_memory(cfg, 8)
    assert one.weights == 4 * cfg.total_params + 2 * matmul_weights(cfg)
    assert one.grads == 4 * cfg.total_params and one.optimizer == 8 * cfg.total_params
    assert eight.activations == 8 * one.activations and eight.logits == head_bytes(cfg, 8 * 1024)
    assert eight.logits == 8 * 1024 * (logits_bytes_per_token(cfg) + 4 * cfg.d_model) + 4 * cfg.vocab_size * cfg.d_model
    parts = eight.weights + eight.grads + eight.optimizer + eight.activations + eight.logits + eight.overhead
    assert eight.total_bytes == parts and eight.overhead > CONTEXT_BYTES
    assert estimate_memory(cfg, 8, dtype="fp32").activations > eight.activations
    assert estimate_memory(cfg, 8, optimizer="sgd").optimizer == 4 * cfg.total_params


def test_max_micro_batch_is_the_largest_that_fits():
    cfg = preset("small")
    budget = 24 * 10**9
    b = max_micro_batch(cfg, budget)
    assert b >= 1
    assert estimate_memory(cfg, b).total_bytes <= budget < estimate_memory(cfg, b + 1).total_bytes
    assert max_micro_batch(cfg, 10**8) == 0  # not even the weights fit


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"micro_batch": 0}, "--micro-batch"), ({"seq_len": 0}, "--seq-len"), ({"dtype": "int3"}, "--dtype"),
     ({"optimizer": "magic"}, "--optimizer")],
)
def test_bad_input_names_the_field(kwargs, field):
    args = {"micro_batch": 1} | kwargs
    with pytest.raises(BookmixError, match=field):
        estimate_memory(preset("nano"), **args)


def test_the_output_layer_stops_growing_past_one_block():
    from bookmix.models.head_blocks import HEAD_BLOCK_BYTES

    cfg = preset("nano")  # 16k vocabulary
    rows = HEAD_BLOCK_BYTES["cuda"] // (4 * cfg.vocab_size)  # V-wide rows one block holds
    narrow = 4 * cfg.d_model  # the hidden-state gradient, per token
    big, bigger = head_bytes(cfg, 4 * rows), head_bytes(cfg, 8 * rows)
    assert bigger - big == 4 * rows * narrow  # only the narrow gradient keeps growing
    assert head_bytes(cfg, rows // 2) < big


def test_a_pack_counts_every_model_but_one_block_and_one_context():
    cfg = preset("nano")
    one = estimate_memory(cfg, 8)
    pack = estimate_memory(cfg, 8, models=16)
    assert pack.weights == 16 * one.weights and pack.optimizer == 16 * one.optimizer
    assert pack.activations == 16 * one.activations
    assert one.logits < pack.logits < 16 * one.logits
    assert pack.total_bytes < 16 * (one.total_bytes - CONTEXT_BYTES) + CONTEXT_BYTES
    with pytest.raises(BookmixError, match="models"):
        estimate_memory(cfg, 8, models=0)


def test_max_micro_batch_finds_the_largest_even_where_growth_is_sublinear():
    cfg = preset("nano")
    for budget in (3 * 10**9, 12 * 10**9, 80 * 10**9):
        b = max_micro_batch(cfg, budget)
        assert estimate_memory(cfg, b).total_bytes <= budget < estimate_memory(cfg, b + 1).total_bytes
