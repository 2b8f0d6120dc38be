"""How many bytes one training process needs: weights, gradients, optimizer states, activations, the output layer,
overhead; for one model or a pack of K trained together (``training.packed``).

The model is mixed-precision training as torch does it: FP32 master weights, gradients and AdamW states; matmuls
under BF16 autocast, so the activations saved for backward are 2-byte tensors except the FP32 ones (RMSNorm inputs,
the loss). Attention runs through a fused SDPA kernel, which saves no T×T score matrix. The output layer and its loss
run a block of tokens at a time (``models.head``), so their V-wide tensors stop growing past one block. Every figure is a plain sum
so a user can check it by hand; the test measures the saved tensors of a real forward pass against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.models.head_blocks import head_blocks

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
    """Peak bytes of the output layer per token of a block, whatever the dtype: the logits, their FP32
    log-probabilities and the gradient made from them (at most 3·4·V). Whole logits (the plain loss, which evaluation
    and SFT use) cost this per token of the batch; training holds one block (:func:`head_bytes`)."""
    return cfg.vocab_size * 12


def head_bytes(cfg: ModelConfig, tokens: int, models: int = 1) -> int:
    """Peak bytes of the output layer and its loss in training (``models.head.head_loss``) for ``models`` models of
    ``tokens`` tokens each: one block of V-wide rows at a time (sized for a GPU, the larger budget), plus the
    gradients of the hidden states (4·C a token) and of the output weights (4·V·C a model), made during forward and
    held until backward."""
    per_block, block_tokens = head_blocks(models, tokens, cfg.vocab_size, "cuda")
    held = per_block * block_tokens * logits_bytes_per_token(cfg)
    return held + models * (tokens * 4 * cfg.d_model + 4 * cfg.vocab_size * cfg.d_model)


def matmul_weights(cfg: ModelConfig) -> int:
    """Parameters that enter a matmul (norm gains do not; a tied head counts once, being one tensor)."""
    return cfg.total_params - (2 * cfg.n_layer + 1) * cfg.d_model


def estimate_memory(
    cfg: ModelConfig,
    micro_batch: int,
    seq_len: int | None = None,
    dtype: str = "bf16",
    optimizer: str = "adamw",
    models: int = 1,
) -> MemoryEstimate:
    """Peak bytes of one training step of ``cfg`` at ``micro_batch`` sequences of ``seq_len`` tokens; with
    ``models`` > 1, of a pack of that many such models in one process (every term K times, but one output-layer
    block and one process reserve)."""
    t = _check(cfg, micro_batch, seq_len, dtype, optimizer)
    if models < 1:
        raise BookmixError(f"models: a pack holds at least one model, got {models}")
    p = cfg.total_params * models
    weights = 4 * p  # FP32 master weights
    if DTYPE_BYTES[dtype] < 4:  # autocast keeps a half-precision copy of every matmul weight for the step
        weights += DTYPE_BYTES[dtype] * matmul_weights(cfg) * models
    grads = 4 * p
    opt = OPTIMIZER_BYTES[optimizer] * p
    tokens = micro_batch * t
    activations = models * tokens * activation_bytes_per_token(cfg, dtype)
    logits = head_bytes(cfg, tokens, models)
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

    def fits(b: int) -> bool:
        return estimate_memory(cfg, b, seq_len, dtype, optimizer).total_bytes <= memory_bytes

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while fits(hi):  # the estimate grows with the micro-batch (sub-linearly once the output layer is one block)
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
