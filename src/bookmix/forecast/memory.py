"""How many bytes one training process needs: weights, gradients, optimizer states, activations, logits, overhead.

The model is mixed-precision training as torch does it: FP32 master weights, gradients and AdamW states; matmuls
under BF16 autocast, so the activations saved for backward are 2-byte tensors except the FP32 ones (RMSNorm inputs,
the loss). Attention runs through a fused SDPA kernel, which saves no T×T score matrix. Every figure is a plain sum
so a user can check it by hand; the test measures the saved tensors of a real forward pass against it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
"""Bytes of one activation element by training dtype (bf16/fp16 mean autocast over FP32 master weights)."""

OPTIMIZER_BYTES = {"adamw": 8, "adam": 8, "lion": 4, "sgd": 4, "sgd-nomomentum": 0}
"""Optimizer state bytes per parameter: AdamW keeps two FP32 moments, Lion and SGD-with-momentum one."""

CONTEXT_BYTES = 1 << 30
"""Fixed per-process reserve: the CUDA context, cuBLAS/cuDNN workspaces and compiled kernels (0.5–1 GB in practice)."""

FRAGMENTATION = 0.10
"""The caching allocator rarely packs tensors perfectly; 10% on top of the tensors is what long runs settle at."""


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    grads: int
    optimizer: int
    activations: int
    logits: int
    overhead: int
    total_bytes: int
    micro_batch: int
    seq_len: int

    def to_dict(self) -> dict:
        return asdict(self)


def _check(cfg: ModelConfig, micro_batch: int, seq_len: int | None, dtype: str, optimizer: str) -> int:
    if micro_batch < 1:
        raise BookmixError(f"--micro-batch: must be ≥ 1, got {micro_batch}")
    t = cfg.block_size if seq_len is None else seq_len
    if t < 1:
        raise BookmixError(f"--seq-len: must be ≥ 1, got {t}")
    if dtype not in DTYPE_BYTES:
        raise BookmixError(f"--dtype: unknown {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}")
    if optimizer not in OPTIMIZER_BYTES:
        raise BookmixError(f"--optimizer: unknown {optimizer!r}; choose one of {', '.join(OPTIMIZER_BYTES)}")
    return t


def activation_bytes_per_token(cfg: ModelConfig, dtype: str = "bf16") -> int:
    """Bytes saved for backward per token, all layers, without the logits.

    Per layer (a = bytes of the training dtype):
    - two RMSNorms, computed in FP32, each save their input and normalised output: 2 × 8·d;
    - the projections save their input: autocast casts it once per projection (q, k, v, gate, up: 5·a·d), while
      in FP32 q/k/v share one tensor and gate/up another (2·4·d);
    - attention saves the rotated q and k, v (grouped-query heads repeated to full width) and the SDPA output,
      which the output projection reads as a view, and the row log-sum-exp: 4·a·d + 4·n_head;
    - the SwiGLU MLP saves gate, up, silu(gate) and their product: 4·a·f.
    The final norm saves 8·d more and the output head its input, a·d.
    """
    a = DTYPE_BYTES[dtype]
    d, f = cfg.d_model, cfg.ff_dim
    norms = 2 * 8 * d
    projection_inputs = 5 * a * d if a < 4 else 2 * 4 * d
    attention = 4 * a * d + 4 * cfg.n_head
    mlp = 4 * a * f
    return cfg.n_layer * (norms + projection_inputs + attention + mlp) + 8 * d + a * d


def logits_bytes_per_token(cfg: ModelConfig, dtype: str = "bf16") -> int:
    """Peak bytes of the output layer per token, whatever the dtype: the loss runs in FP32, and the backward of its
    log-softmax holds the saved FP32 log-probabilities, the incoming gradient and the outgoing one at once (3·4·V).
    For small models with a large vocabulary this is the biggest term of all."""
    return cfg.vocab_size * 12


def matmul_weights(cfg: ModelConfig) -> int:
    """Parameters that enter a matmul (norm gains do not; a tied head counts once, being one tensor)."""
    return cfg.total_params - (2 * cfg.n_layer + 1) * cfg.d_model


def estimate_memory(
    cfg: ModelConfig,
    micro_batch: int,
    seq_len: int | None = None,
    dtype: str = "bf16",
    optimizer: str = "adamw",
) -> MemoryEstimate:
    """Peak bytes of one training step of ``cfg`` at ``micro_batch`` sequences of ``seq_len`` tokens."""
    t = _check(cfg, micro_batch, seq_len, dtype, optimizer)
    p = cfg.total_params
    weights = 4 * p  # FP32 master weights
    if DTYPE_BYTES[dtype] < 4:  # autocast keeps a half-precision copy of every matmul weight for the step
        weights += DTYPE_BYTES[dtype] * matmul_weights(cfg)
    grads = 4 * p
    opt = OPTIMIZER_BYTES[optimizer] * p
    tokens = micro_batch * t
    activations = tokens * activation_bytes_per_token(cfg, dtype)
    logits = tokens * logits_bytes_per_token(cfg, dtype)
    tensors = weights + grads + opt + activations + logits
    overhead = CONTEXT_BYTES + int(FRAGMENTATION * tensors)
    return MemoryEstimate(weights, grads, opt, activations, logits, overhead, tensors + overhead, micro_batch, t)


def max_micro_batch(
    cfg: ModelConfig,
    memory_bytes: int,
    seq_len: int | None = None,
    dtype: str = "bf16",
    optimizer: str = "adamw",
) -> int:
    """The largest micro-batch whose estimate fits in ``memory_bytes``; 0 when not even one sequence fits."""
    one = estimate_memory(cfg, 1, seq_len, dtype, optimizer).total_bytes
    two = estimate_memory(cfg, 2, seq_len, dtype, optimizer).total_bytes
    per_sample, fixed = two - one, 2 * one - two  # the estimate is linear in the micro-batch
    if memory_bytes < one:
        return 0
    b = max(1, math.floor((memory_bytes - fixed) / per_sample))
    while b > 1 and estimate_memory(cfg, b, seq_len, dtype, optimizer).total_bytes > memory_bytes:
        b -= 1  # integer rounding of the fragmentation term can push the last one over
    return b
