"""Model shapes: the LLaMA-style configuration, the named presets, and exact parameter counts.

This file needs no torch: the forecaster, the CLI and the designs read shapes and parameter counts from here
without importing the model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from bookmix.errors import ConfigError


def _swiglu_hidden(d_model: int, multiple_of: int = 64) -> int:
    """SwiGLU hidden width: 8/3·d (same parameters as a 4·d GELU MLP), rounded up to a multiple for fast matmuls."""
    return multiple_of * math.ceil(8 * d_model / 3 / multiple_of)


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only LLaMA-style transformer (RMSNorm, rotary embeddings, SwiGLU, optional grouped-query attention)."""

    vocab_size: int = 16384
    """Rows of the embedding; set from the library's tokenizer."""
    n_layer: int = 6
    n_head: int = 4
    n_kv_head: int | None = None
    """Key/value heads; fewer than n_head is grouped-query attention. None means n_head (plain multi-head)."""
    d_model: int = 128
    d_ff: int | None = None
    """SwiGLU hidden width; None means 8/3·d_model rounded up to a multiple of 64."""
    block_size: int = 256
    """Context length T (tokens the model sees at once); exported as max_position_embeddings."""
    tie_embeddings: bool = True
    """Share the input embedding with the output head (saves vocab·d parameters; usual for small models)."""
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        for key in ("vocab_size", "n_layer", "n_head", "d_model", "block_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key}: must be ≥ 1, got {getattr(self, key)}")
        if self.d_model % self.n_head:
            raise ConfigError(f"model.d_model: must be divisible by n_head ({self.n_head}), got {self.d_model}")
        if (self.d_model // self.n_head) % 2:
            raise ConfigError(f"model.d_model: head size d_model/n_head must be even for rotary embeddings, got {self.d_model // self.n_head}")
        if self.n_head % self.kv_heads:
            raise ConfigError(f"model.n_kv_head: must divide n_head ({self.n_head}), got {self.n_kv_head}")

    # ---- derived shapes -------------------------------------------------------------------------------------
    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def ff_dim(self) -> int:
        return self.d_ff or _swiglu_hidden(self.d_model)

    # ---- parameter counts (exact: they match sum(p.numel()) of the torch model) ----------------------------
    @property
    def params_per_layer(self) -> int:
        d, kv = self.d_model, self.kv_heads * self.head_dim
        attn = d * d + 2 * d * kv + d * d  # q, k, v, o projections (no biases)
        mlp = 3 * d * self.ff_dim  # gate, up, down
        norms = 2 * d
        return attn + mlp + norms

    @property
    def non_embedding_params(self) -> int:
        """Transformer blocks and the final norm: the N of scaling laws."""
        return self.n_layer * self.params_per_layer + self.d_model

    @property
    def embedding_params(self) -> int:
        """Input embedding plus, if untied, the output head."""
        return self.vocab_size * self.d_model * (1 if self.tie_embeddings else 2)

    @property
    def total_params(self) -> int:
        return self.non_embedding_params + self.embedding_params

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token: 6 × (every matmul weight, including the output head) + the attention term 12·L·d·T.

        The output head (vocab × d) is counted even when tied to the embedding: its matmul runs on every token.
        Leaving it out badly understates the cost of small models, whose head is most of the compute.
        """
        t = seq_len or self.block_size
        matmul_weights = self.n_layer * (self.params_per_layer - 2 * self.d_model) + self.vocab_size * self.d_model
        return 6 * matmul_weights + 12 * self.n_layer * self.d_model * t

    def with_vocab(self, vocab_size: int) -> ModelConfig:
        return replace(self, vocab_size=vocab_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"model: unknown field(s) {', '.join(unknown)}")
        return cls(**known)


# Presets by name. Sizes refer to non-embedding parameters (the blocks); totals depend on the vocabulary.
# Context lengths grow with size: a 1M model learns little from long contexts and a longer T costs CPU time.
PRESETS: dict[str, ModelConfig] = {
    "nano": ModelConfig(name="nano", n_layer=6, n_head=4, d_model=128, block_size=256),  # ~1.2M
    "micro": ModelConfig(name="micro", n_layer=6, n_head=6, d_model=384, block_size=256),  # ~10.7M
    "mini": ModelConfig(name="mini", n_layer=10, n_head=8, d_model=512, block_size=512),  # ~31.5M
    "small": ModelConfig(name="small", n_layer=12, n_head=12, d_model=768, block_size=1024),  # ~85M blocks, ~125M with a 50k vocab
    "medium": ModelConfig(name="medium", n_layer=24, n_head=16, d_model=1024, block_size=1024),  # ~302M
    "large": ModelConfig(name="large", n_layer=20, n_head=16, n_kv_head=8, d_model=2048, block_size=2048),  # ~0.9B
}


def preset(name: str, vocab_size: int | None = None, **overrides) -> ModelConfig:
    """A preset by name, with the library's vocabulary and any explicit overrides."""
    if name not in PRESETS:
        raise ConfigError(f"model: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]
    if vocab_size is not None:
        cfg = replace(cfg, vocab_size=vocab_size)
    if overrides:
        cfg = replace(cfg, **overrides)
    return cfg
