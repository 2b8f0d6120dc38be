"""How :func:`bookmix.models.head.head_loss` splits the output layer into blocks (no torch: the forecast reads it)."""

from __future__ import annotations

HEAD_BLOCK_BYTES = {"cpu": 16 << 20, "cuda": 1 << 30}
"""Float32 logits ``head_loss`` holds at once, by device type. On a CPU, about one nano model's logits at micro-batch
8 × 128 tokens and a 4k vocabulary: small enough for the caches, large enough for efficient matmuls. On a GPU it only bounds memory (a pack's logits grow with K × vocabulary: 40 models ×
2048 tokens × 16k are 5 GB in float32, three times over with their log-softmax and gradient), and is large enough
that the block loop adds few kernel launches."""

HEAD_MIN_TOKENS = 128
"""Fewest tokens per model in a block whatever the budget: fewer rows make the block's matmuls inefficient."""


def head_blocks(k: int, n: int, vocab: int, device_type: str) -> tuple[int, int]:
    """(models, tokens) per block: whole models (every token of each) while one model's logits fit the budget, as
    many as fit; else one model and as many tokens as fit, at least :data:`HEAD_MIN_TOKENS`."""
    budget = HEAD_BLOCK_BYTES.get(device_type, HEAD_BLOCK_BYTES["cuda"])
    per_model = 4 * n * vocab
    if per_model <= budget:
        return min(k, budget // per_model), n
    return 1, min(n, max(HEAD_MIN_TOKENS, budget // (4 * vocab)))
