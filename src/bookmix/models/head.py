"""The output layer and its cross-entropy, a block of models and tokens at a time, never holding the whole logits.

A language model's logits are (tokens × vocabulary): at 16k vocabulary and 2048 tokens a step they are 134 MB in
float32, and the standard loss holds three such tensors (logits, log-probabilities, their gradient). A pack of K
models holds K times that. :func:`head_loss` computes the same loss and gradients block by block: each block's logits
are made, turned into the loss and, when a gradient is wanted, straight into the gradients of the hidden states and
the output weights (softmax − one-hot), then dropped. Backward is then only a per-model scaling.

Why: on a GPU it bounds the memory that would otherwise grow with K × vocabulary and limit the pack size; on a CPU
it keeps each block in cache, where whole-batch logits stream from memory (and, with glibc's default malloc, are
page-faulted in afresh every step: ``training.device.keep_host_memory``).
"""

from __future__ import annotations

import torch

from bookmix.models.head_blocks import head_blocks

IGNORE_INDEX = -100

def head_loss(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, block: tuple[int, int] | None = None
) -> torch.Tensor:
    """Per-model mean cross-entropy (K,) of ``x`` (K, N, C) through output weights ``weight`` (K, V, C) against
    ``targets`` (K, N), IGNORE_INDEX rows left out, a model with no counted target at 0.

    Equal to ``cross_entropy(bmm(x, weightᵀ).float(), targets)`` per model (the same float32 log-softmax, summed in
    another order), but computed a block of (models, tokens) at a time (:func:`head_blocks` unless given): each
    block's logits are made, turned into the loss and, when a gradient is wanted, straight into the gradients of
    ``x`` and ``weight`` (softmax − one-hot), then dropped. Nothing V-wide outlives its block; backward is a
    per-model scaling of the two gradients."""
    K, N, _ = x.shape
    if block is None:
        block = head_blocks(K, N, weight.shape[1], x.device.type)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _HeadLoss.apply(x, weight, targets, block)
    return _head_loss_blocks(x, weight, targets, block, grads=False)[0]


def _bmm_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, accumulate: bool) -> None:
    """``out (+)= a @ b`` batched, in place when the dtypes allow (no temporary), else through one."""
    if a.dtype == b.dtype == out.dtype and out.is_contiguous() and not torch.is_autocast_enabled(a.device.type):
        if accumulate:
            out.baddbmm_(a, b)
        else:
            torch.bmm(a, b, out=out)
    elif accumulate:
        out.add_(torch.bmm(a, b))
    else:
        out.copy_(torch.bmm(a, b))


def _head_loss_blocks(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, block: tuple[int, int], grads: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(mean loss (K,), counted targets (K,), d sum-loss / dx, d sum-loss / dweight): the gradients are of each model's
    *summed* loss, which backward turns into the mean's with ``counted``."""
    K, N, _ = x.shape
    models, tokens = block
    valid_all = targets != IGNORE_INDEX
    counted = valid_all.sum(dim=1).clamp_min(1)
    total = torch.zeros(K, device=x.device, dtype=torch.float32)
    grad_x = torch.empty_like(x) if grads else None
    grad_w = torch.empty_like(weight, dtype=torch.float32) if grads else None
    for k0 in range(0, K, models):
        ks = slice(k0, k0 + models)
        w = weight[ks].to(x.dtype)
        for lo in range(0, N, tokens):
            ts = slice(lo, lo + tokens)
            xc, valid = x[ks, ts], valid_all[ks, ts]
            safe = targets[ks, ts].clamp_min(0).unsqueeze(-1)
            logits = torch.bmm(xc, w.mT)  # (models, tokens, V): the block's V-wide tensors are the only ones
            logp = torch.log_softmax(logits.float(), dim=-1)
            del logits
            total[ks] -= (logp.gather(-1, safe).squeeze(-1) * valid).sum(dim=1)
            if grad_x is None or grad_w is None:  # no gradients wanted
                continue
            # d(−log p_target)/d logits = softmax − one-hot, made in place of the log-probabilities. Rows of ignored
            # targets are zeroed through the narrow tensors (x's rows, the x-gradient's rows), not the V-wide one.
            g = logp.exp_().scatter_add_(-1, safe, torch.full_like(safe, -1.0, dtype=logp.dtype)).to(x.dtype)
            keep = valid.unsqueeze(-1).to(x.dtype)
            gx = grad_x[ks, ts]
            _bmm_into(gx, g, w, accumulate=False)
            gx.mul_(keep)
            _bmm_into(grad_w[ks], g.mT, xc * keep, accumulate=lo > 0)
    return total / counted, counted, grad_x, grad_w


class _HeadLoss(torch.autograd.Function):
    """Gradients made during forward, block by block (see :func:`head_loss`); backward scales them per model."""

    @staticmethod
    def forward(ctx, x, weight, targets, block):  # noqa: ANN001, ANN205
        loss, counted, grad_x, grad_w = _head_loss_blocks(x, weight, targets, block, grads=True)
        ctx.save_for_backward(grad_x, grad_w, counted)
        ctx.weight_dtype = weight.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):  # noqa: ANN001, ANN205
        if getattr(ctx, "used", False):
            raise RuntimeError("head_loss: a second backward through the same graph (its gradients were consumed)")
        ctx.used = True
        grad_x, grad_w, counted = ctx.saved_tensors
        scale = grad_loss.float() / counted  # (K,): d loss_k / d sum_k = 1 / counted_k
        # In place: the two gradients exist for this one backward (a second one through the same graph is refused).
        gx = grad_x.mul_(scale.view(-1, 1, 1).to(grad_x.dtype))
        gw = grad_w.mul_(scale.view(-1, 1, 1)).to(ctx.weight_dtype)
        return gx, gw, None, None
