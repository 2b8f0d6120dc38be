"""K language models of one shape computed as one: every weight gains a leading pack dimension K.

A 1M–10M parameter model leaves a GPU almost idle: its matmuls are too small to fill the tensor cores and each step
is mostly kernel launches. Stacking K such models (horizontal fusion, as in HFTA) turns K small matmuls into one
batched matmul (``torch.bmm`` over K), K·B attention rows into one ``scaled_dot_product_attention`` call and K
embedding look-ups into one, so the launch count of a step is that of a single model while the work is K times more.

The models stay independent: no op mixes two pack slots, so model k's gradient is exactly the gradient it would get
alone. The module tree and parameter names are :class:`bookmix.models.model.LM`'s, with a leading K on every
parameter (``model.layers.0.self_attn.q_proj.weight`` is (K, d, d) here, (d, d) there), so slot k of every parameter
is model k's state dict: :meth:`PackedLM.member` and :meth:`PackedLM.set_member` convert without a rename.

Shapes: activations are (K, N, C) with N = B·T tokens per model; attention regroups them as (K·B, H, T, D).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from bookmix.models.config import ModelConfig
from bookmix.models.head import head_loss
from bookmix.models.model import IGNORE_INDEX, apply_rotary, rotary_tables


class PackedNorm(nn.Module):
    """K RMSNorms: weight (K, C). Normalised in float32 like :class:`~bookmix.models.model.RMSNorm`."""

    def __init__(self, k: int, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(k, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, N, C)
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return self.weight[:, None, :] * normed.to(x.dtype)


class _BatchedLinear(torch.autograd.Function):
    """y = x @ wᵀ per pack slot, with the weight gradient made as gᵀ @ x, directly in the weight's (K, out, in)
    layout, as ``nn.Linear`` makes its own. Autograd through ``bmm(x, w.mT)`` would make it as (x.mT @ g)ᵀ, a
    transposed view that every step copies into a contiguous gradient (on a CPU, ~1% of a micro pack's step)."""

    @staticmethod
    def forward(ctx, x, w):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x, w)
        return torch.bmm(x, w.mT)

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        # Under autocast, forward's bmm ran in bf16 and g is bf16: the backward matmuls run in g's dtype, as
        # autocast's own would, and autograd casts each gradient to its input's dtype.
        x, w = ctx.saved_tensors
        gx = torch.bmm(g, w.to(g.dtype)) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.mT, x.to(g.dtype)) if ctx.needs_input_grad[1] else None
        return gx, gw


class PackedLinear(nn.Module):
    """K bias-free ``nn.Linear`` layers: weight (K, out, in), y[k] = x[k] @ weight[k]ᵀ as one batched matmul."""

    def __init__(self, k: int, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, d_out, d_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, N, in) -> (K, N, out)
        return _BatchedLinear.apply(x, self.weight)


class PackedAttention(nn.Module):
    def __init__(self, k: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        d, kv = cfg.d_model, cfg.kv_heads * cfg.head_dim
        self.q_proj = PackedLinear(k, d, d)
        self.k_proj = PackedLinear(k, d, kv)
        self.v_proj = PackedLinear(k, d, kv)
        self.o_proj = PackedLinear(k, d, d)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        K, N, C = x.shape
        T = cos.shape[0]
        B = N // T
        # (K, B·T, H·D) is laid out as (K·B, T, H, D): every (model, window) pair is one attention batch row.
        q = self.q_proj(x).view(K * B, T, self.n_head, self.head_dim).transpose(1, 2)  # (K·B, H, T, D)
        k = self.k_proj(x).view(K * B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (K·B, Hkv, T, D)
        v = self.v_proj(x).view(K * B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if self.n_kv_head != self.n_head:
            rep = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (K·B, H, T, D)
        return self.o_proj(y.transpose(1, 2).reshape(K, N, C))


class PackedMLP(nn.Module):
    def __init__(self, k: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = PackedLinear(k, cfg.d_model, cfg.ff_dim)
        self.up_proj = PackedLinear(k, cfg.d_model, cfg.ff_dim)
        self.down_proj = PackedLinear(k, cfg.ff_dim, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class PackedBlock(nn.Module):
    def __init__(self, k: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = PackedNorm(k, cfg.d_model, cfg.norm_eps)
        self.self_attn = PackedAttention(k, cfg)
        self.post_attention_layernorm = PackedNorm(k, cfg.d_model, cfg.norm_eps)
        self.mlp = PackedMLP(k, cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class PackedDecoder(nn.Module):
    def __init__(self, k: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Module()
        self.embed_tokens.weight = nn.Parameter(torch.empty(k, cfg.vocab_size, cfg.d_model))  # (K, V, C)
        self.layers = nn.ModuleList(PackedBlock(k, cfg) for _ in range(cfg.n_layer))
        self.norm = PackedNorm(k, cfg.d_model, cfg.norm_eps)


class PackedLM(nn.Module):
    """K decoder-only LMs of one shape. ``forward(idx (K, B, T), targets=None) -> (logits (K, B, T, V), loss (K,))``.

    Built with uninitialised weights: fill each slot from a single model (``set_member(k, dict(lm.named_parameters()))``)
    so that a packed model starts exactly where the same model trained alone would.
    """

    rope_cos: torch.Tensor  # buffers registered in __init__
    rope_sin: torch.Tensor

    def __init__(self, cfg: ModelConfig, k: int) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"a pack holds at least one model, got {k}")
        self.cfg, self.k = cfg, k
        self.model = PackedDecoder(k, cfg)
        self.lm_head = None if cfg.tie_embeddings else PackedLinear(k, cfg.d_model, cfg.vocab_size)
        cos, sin = rotary_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    # ---- slots: one model's weights in, out, or dropped ---------------------------------------------------------
    @torch.no_grad()
    def set_member(self, k: int, tensors: dict[str, torch.Tensor]) -> None:
        """Copy one model's weights (LM parameter names, a tied head once as the embedding) into slot k."""
        for name, p in self.named_parameters():
            if name not in tensors:
                raise KeyError(f"weights for pack slot {k} lack {name}")
            p[k].copy_(tensors[name])

    def member(self, k: int) -> dict[str, torch.Tensor]:
        """Slot k's weights under LM's parameter names: views into the pack, detached."""
        return {name: p[k].detach() for name, p in self.named_parameters()}

    @torch.no_grad()
    def keep(self, slots: list[int]) -> None:
        """Drop every slot not in ``slots`` (a finished or diverged model leaves the pack; the others go on)."""
        index = torch.as_tensor(slots, dtype=torch.long, device=self.rope_cos.device)
        for p in self.parameters():
            p.grad = None
            p.data = p.data.index_select(0, index)
        self.k = len(slots)

    # ---- forward --------------------------------------------------------------------------------------------------
    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, logits: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``logits=False`` with targets returns ``(None, loss)`` through :func:`head_loss`, which never holds the
        pack's whole (K, N, V) logits: what a training step wants."""
        K, B, T = idx.shape
        if self.k != K:
            raise ValueError(f"input holds {K} models' windows but the pack has {self.k}")
        if self.cfg.block_size < T:
            raise ValueError(f"sequence length {T} exceeds block_size {self.cfg.block_size}")
        V, C = self.cfg.vocab_size, self.cfg.d_model
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        # One look-up for all K tables: model k's token t is row k·V + t of the stacked (K·V, C) table.
        offsets = torch.arange(K, device=idx.device) * V
        embed = cast(torch.Tensor, self.model.embed_tokens.weight)  # (K, V, C): a Parameter on a plain Module
        x = F.embedding((idx + offsets[:, None, None]).view(K, B * T), embed.view(K * V, C))  # (K, N, C)
        for block in self.model.layers:
            x = block(x, cos, sin)
        x = self.model.norm(x)
        head = embed if self.lm_head is None else self.lm_head.weight  # (K, V, C)
        if targets is not None and not logits:
            return None, head_loss(x, head, targets.reshape(K, B * T))
        out = torch.bmm(x, head.mT)  # (K, N, V)
        if targets is None:
            return out.view(K, B, T, V), None
        # Per-model mean over the targets that count (padding rows of a short final batch are IGNORE_INDEX), in
        # float32 as LM does; a model with no target in this batch gets 0, not 0/0.
        flat = targets.reshape(K, B * T)
        tok = F.cross_entropy(out.float().view(K * B * T, V), flat.reshape(-1), ignore_index=IGNORE_INDEX,
                              reduction="none").view(K, B * T)
        counted = (flat != IGNORE_INDEX).sum(dim=1).clamp_min(1)
        return out.view(K, B, T, V), tok.sum(dim=1) / counted
