"""The memory model against what torch really saves for backward."""

from __future__ import annotations

import pytest
import torch

from bookmix.errors import BookmixError
from bookmix.forecast.memory import (
    CONTEXT_BYTES,
    activation_bytes_per_token,
    estimate_memory,
    logits_bytes_per_token,
    matmul_weights,
    max_micro_batch,
)
from bookmix.models.config import ModelConfig, preset
from bookmix.models.model import LM


def saved_bytes(cfg: ModelConfig, batch: int, seq: int, dtype: str) -> int:
    """Bytes of every distinct storage autograd saves in one forward with loss, parameters excluded."""
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
        model(idx, idx)
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


def test_breakdown_adds_up_and_grows_with_batch():
    cfg = preset("small")
    one = estimate_memory(cfg, 1)
    eight = estimate_memory(cfg, 8)
    assert one.weights == 4 * cfg.total_params + 2 * matmul_weights(cfg)
    assert one.grads == 4 * cfg.total_params and one.optimizer == 8 * cfg.total_params
    assert eight.activations == 8 * one.activations and eight.logits == 8 * one.logits
    assert eight.logits == 8 * 1024 * logits_bytes_per_token(cfg)
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
