"""The micro LLaMA-style language model, in one file, top to bottom.

RMSNorm → rotary embeddings → attention (grouped-query optional, ``scaled_dot_product_attention`` so that GPUs run a
FlashAttention kernel) → SwiGLU MLP → blocks → the LM. Module and parameter names follow Hugging Face's
``LlamaForCausalLM`` exactly (``model.layers.0.self_attn.q_proj.weight`` ...), so exporting is a copy, not a rename,
and the parameter count equals :attr:`ModelConfig.total_params` (see ``models/config.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bookmix.models.config import ModelConfig
from bookmix.models.head import IGNORE_INDEX, head_loss

"""Targets equal to this are left out of the loss (prompt tokens in dialogue fine-tuning, padding)."""


class RMSNorm(nn.Module):
    """x / rms(x) · weight, computed in float32 (as Llama does) so bf16 activations do not lose the scale."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return self.weight * normed.to(x.dtype)


def rotary_tables(cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, (block_size, head_dim), in the half-split layout Llama uses."""
    dim = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    angles = torch.outer(torch.arange(cfg.block_size, dtype=torch.float32), inv_freq)  # (T, D/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, D)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (i, i + D/2) of x (B, H, T, D) by position-dependent angles."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        d, kv = cfg.d_model, cfg.kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, kv, bias=False)
        self.v_proj = nn.Linear(d, kv, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if self.n_kv_head != self.n_head:  # grouped-query: each key/value head serves n_head/n_kv_head query heads
            rep = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # FlashAttention / memory-efficient on GPU
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) · up(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.ff_dim, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.ff_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ff_dim, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    """The body (Hugging Face's ``LlamaModel``): embedding, blocks, final norm."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)


class LM(nn.Module):
    """Decoder-only language model. ``forward(idx, targets=None) -> (logits, loss | None)``."""

    rope_cos: torch.Tensor  # (block_size, head_dim / 2) buffers, registered in __init__
    rope_sin: torch.Tensor

    def __init__(self, cfg: ModelConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = Decoder(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        cos, sin = rotary_tables(cfg)
        # Not persistent: derived from the config, so they stay out of checkpoints and exports.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.init_weights(seed)

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """Normal(0, init_std) for every matrix; the projections that write into the residual stream (o_proj,
        down_proj) scaled by 1/sqrt(2·n_layer) so the residual's variance does not grow with depth (GPT-2).
        A private generator makes the weights a function of the seed alone, whatever else used the global RNG."""
        if self.lm_head.weight.is_meta:  # shape-only model (parameter counts of big presets): nothing to fill
            return
        gen = torch.Generator(device=self.lm_head.weight.device).manual_seed(seed)
        std, residual_std = self.cfg.init_std, self.cfg.init_std / math.sqrt(2 * self.cfg.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, residual_std if name.endswith(("o_proj.weight", "down_proj.weight")) else std, generator=gen)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters (tied weights once). ``non_embedding`` leaves out the embedding and an untied head."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.model.embed_tokens.weight.numel()
            if not self.cfg.tie_embeddings:
                n -= self.lm_head.weight.numel()
        return n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, logits: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(logits (B, T, V), loss | None)``; ``logits=False`` with targets returns ``(None, loss)`` through
        :func:`~bookmix.models.head.head_loss`, which never holds the whole logits (what training wants), and
        gives 0 rather than NaN when no target counts."""
        if idx.shape[1] > self.cfg.block_size:
            raise ValueError(f"sequence length {idx.shape[1]} exceeds block_size {self.cfg.block_size}")
        B, T = idx.shape
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        x = self.model.embed_tokens(idx)  # (B, T, C)
        for block in self.model.layers:
            x = block(x, cos, sin)
        x = self.model.norm(x)
        if targets is not None and not logits:
            loss = head_loss(x.reshape(1, B * T, -1), self.lm_head.weight[None], targets.reshape(1, B * T))
            return None, loss[0]
        out = self.lm_head(x)  # (B, T, V)
        if targets is None:
            return out, None
        # float32 for the softmax: bf16 log-probabilities over a large vocabulary lose the small differences.
        loss = F.cross_entropy(out.float().view(B * T, -1), targets.reshape(B * T), ignore_index=IGNORE_INDEX)
        return out, loss
