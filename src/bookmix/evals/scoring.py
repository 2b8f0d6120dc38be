"""Batched scoring: log p(continuation | context) for many (context, continuation) pairs, one forward per batch.

Every scored task reduces to this. Pairs are joined, left-truncated to the model's context, sorted by length (so a
batch pads little), packed into a padded (B, T) batch with numpy index arrays, run through the model once, and the
continuation's log-probabilities are gathered with index arrays. There is no Python loop over tokens; the only
loop is over batches. Right padding is harmless: the model is causal, so pad tokens after a sequence never
influence its positions, and their positions are masked out.

The model is any ``logits_fn(idx: LongTensor (B, T)) -> logits (B, T, V)``; :func:`as_logits_fn` adapts
``bookmix.models.model.LM`` (whose forward returns ``(logits, loss)``). For an LM the output head is applied only
at the scored positions (:func:`split_head`): a 128-token context with a 32-token continuation needs 32 rows of the
(T, V) logits, not 160, and the head and the log-softmax over V are most of a small model's cost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

LogitsFn = Callable[[torch.Tensor], torch.Tensor]

HEAD_CHUNK = 2048
"""Scored positions per head matmul: 2048 × a 16k vocabulary is 128 MB of float32 logits, twice that with the
log-softmax's temporary; enough rows to keep the matmul efficient."""


@dataclass
class Scores:
    """Per pair: summed log-probability (nats) of the continuation, its scored token count, and whether greedy
    decoding reproduces it exactly (every continuation token is the argmax: LAMBADA's accuracy)."""

    logprob: np.ndarray  # (n,) float64
    n_tokens: np.ndarray  # (n,) int64
    greedy: np.ndarray | None = None  # (n,) bool, only when asked for (the argmax over V costs a tenth of the time)


def as_logits_fn(model: torch.nn.Module | LogitsFn) -> LogitsFn:
    """A ``logits_fn`` from an LM (forward returns a tuple) or from a callable already returning logits."""

    def fn(idx: torch.Tensor) -> torch.Tensor:
        out = model(idx)
        return out[0] if isinstance(out, tuple) else out

    return fn


@contextlib.contextmanager
def _without_head(model: torch.nn.Module):
    """Temporarily make the LM's forward return its final hidden states (the head replaced by identity)."""
    head = model.lm_head
    model.lm_head = torch.nn.Identity()
    try:
        yield head
    finally:
        model.lm_head = head


def split_head(model: torch.nn.Module) -> tuple[LogitsFn, torch.nn.Module] | None:
    """(hidden_fn, head) for a model whose forward ends with ``logits = lm_head(hidden)`` (our LM and Llama's layout),
    so the head runs on the scored positions only; None for any other model (scored through full logits)."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd model: swap the head on the module it wraps
    if not isinstance(getattr(model, "lm_head", None), torch.nn.Linear):
        return None
    forward = as_logits_fn(model)

    def hidden_fn(idx: torch.Tensor) -> torch.Tensor:
        with _without_head(model):
            return forward(idx)  # (B, T, C)

    return hidden_fn, model.lm_head


def model_device(model: object) -> torch.device:
    params = getattr(model, "parameters", None)
    if params is not None:
        for p in params():
            return p.device
    return torch.device("cpu")


class Scorer:
    """Scores (context, continuation) pairs and samples continuations with one model.

    ``block_size`` is the longest input the model takes; ``batch_size`` the sequences per forward. The logits of a
    batch are (B, T, V) floats: with V = 16k and T = 256, 32 sequences are 0.5 GB, which is why the default is
    modest on CPU; on a GPU a few hundred is fine.
    """

    def __init__(
        self, logits_fn: LogitsFn, block_size: int, device: torch.device | str = "cpu", batch_size: int = 32,
        head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        """With ``head``, ``logits_fn`` returns hidden states (B, T, C) and ``head`` maps (N, C) to logits (N, V)."""
        if block_size < 2:
            raise ValueError(f"block_size must be ≥ 2, got {block_size}")
        self.logits_fn = logits_fn
        self.head = head
        self.block_size = int(block_size)
        self.device = torch.device(device)
        self.batch_size = max(1, int(batch_size))
        self.forwards = 0
        self.tokens_scored = 0

    @classmethod
    def for_model(cls, model: torch.nn.Module, device=None, batch_size: int = 32, block_size: int | None = None):
        """A scorer for an ``LM`` (block size read from ``model.cfg``), in eval mode, on its device."""
        if block_size is None:
            cfg = getattr(model, "cfg", None)
            if cfg is None:
                raise ValueError("block_size is needed for a model without .cfg")
            block_size = cfg.block_size
        if isinstance(model, torch.nn.Module):
            model.eval()
            if device is not None:
                model.to(device)
        split = split_head(model)
        if split is None:
            return cls(as_logits_fn(model), block_size, device or model_device(model), batch_size)
        return cls(split[0], block_size, device or model_device(model), batch_size, head=split[1])

    # ---- scoring ----------------------------------------------------------------------------------------------
    def score(self, contexts: Sequence[np.ndarray], continuations: Sequence[np.ndarray], greedy: bool = False) -> Scores:
        """log p(continuation | context) for every pair. Contexts must be non-empty (use the end-of-book id as a
        start token for an unconditional score). A pair longer than ``block_size + 1`` tokens loses the start of its
        context; a continuation longer than ``block_size`` keeps only its last ``block_size`` tokens scored."""
        n = len(contexts)
        if n != len(continuations):
            raise ValueError(f"{n} contexts but {len(continuations)} continuations")
        out = Scores(np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool) if greedy else None)
        if n == 0:
            return out
        seqs, n_cont = [], np.empty(n, dtype=np.int64)
        for i, (ctx, cont) in enumerate(zip(contexts, continuations, strict=True)):
            if len(ctx) == 0:
                raise ValueError(f"pair {i}: empty context (give at least a start token)")
            full = np.concatenate([np.asarray(ctx, dtype=np.int64), np.asarray(cont, dtype=np.int64)])
            seqs.append(full[-(self.block_size + 1) :])  # left-truncate: keep the end, where the continuation is
            n_cont[i] = min(len(cont), self.block_size)
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")  # longest first: similar lengths share a batch
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            lp, ok = self._score_batch([seqs[r] for r in rows], lengths[rows], n_cont[rows], greedy)
            out.logprob[rows] = lp
            if out.greedy is not None:
                out.greedy[rows] = ok
        out.n_tokens[:] = n_cont
        return out

    @torch.inference_mode()
    def _score_batch(self, seqs: list[np.ndarray], lengths: np.ndarray, n_cont: np.ndarray, greedy: bool):
        B, T = len(seqs), int(lengths.max()) - 1
        flat = np.concatenate(seqs)
        row = np.repeat(np.arange(B), lengths)  # which sequence each token belongs to
        col = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # its position in it
        tokens = np.zeros((B, T + 1), dtype=np.int64)
        tokens[row, col] = flat
        # Targets at input position t are tokens[t + 1]; the continuation is the last n_cont targets of each row.
        pos = np.arange(T)[None, :]
        mask = (pos >= (lengths - 1 - n_cont)[:, None]) & (pos < (lengths - 1)[:, None])  # (B, T)

        idx = torch.from_numpy(tokens).to(self.device)
        m = torch.from_numpy(mask).to(self.device)
        out = self.logits_fn(idx[:, :-1])  # (B, T, V), or (B, T, C) hidden states when the head is separate
        rows = torch.arange(B, device=self.device).unsqueeze(1).expand(B, T)[m]  # (N,) owner of each scored position
        picked = out[m]  # (N, V) or (N, C): only the scored positions
        targets = idx[:, 1:][m]  # (N,)
        token_lp = torch.empty(len(targets), device=self.device)
        hit = torch.zeros(len(targets), dtype=torch.int64, device=self.device)
        for a in range(0, len(targets), HEAD_CHUNK):  # bounded (chunk, V) logits, whatever the batch
            z = slice(a, a + HEAD_CHUNK)
            logits = (self.head(picked[z]) if self.head is not None else picked[z]).float()  # (chunk, V)
            token_lp[z] = logits.gather(1, targets[z].unsqueeze(1)).squeeze(1) - torch.logsumexp(logits, dim=1)
            if greedy:
                hit[z] = logits.argmax(dim=1) == targets[z]
        lp = torch.zeros(B, dtype=torch.float64, device=self.device).index_add_(0, rows, token_lp.double())
        hits = torch.zeros(B, dtype=torch.int64, device=self.device).index_add_(0, rows, hit)
        ok = hits == torch.from_numpy(n_cont).to(self.device)
        self.forwards += 1
        self.tokens_scored += int(mask.sum())
        return lp.cpu().numpy(), ok.cpu().numpy()

    # ---- sampling ---------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self, prompt: np.ndarray, max_new_tokens: int, n: int = 1, temperature: float = 0.0, top_k: int | None = None,
        seed: int = 0, stop_id: int | None = None,
    ) -> list[np.ndarray]:
        """``n`` continuations of one prompt (greedy when temperature is 0, else seeded sampling), batched over n.

        Generation is inherently one forward per new token; it is used for a handful of prompts, never for scoring.
        Generation stops early for a row once it emits ``stop_id`` (the end-of-book token).
        """
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        idx = torch.as_tensor(np.asarray(prompt, dtype=np.int64), device=self.device).unsqueeze(0).repeat(n, 1)
        out = torch.empty((n, 0), dtype=torch.long, device=self.device)
        for _ in range(max_new_tokens):
            last = self.logits_fn(torch.cat([idx, out], dim=1)[:, -self.block_size :])[:, -1, :]
            logits = (self.head(last) if self.head is not None else last).float()  # (n, V)
            if temperature <= 0:
                nxt = logits.argmax(dim=-1)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, dim=-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1).to(self.device)
            out = torch.cat([out, nxt.unsqueeze(1)], dim=1)
            if stop_id is not None and bool((out == stop_id).any(dim=1).all()):
                break
        result = []
        for row in out.cpu().numpy():
            if stop_id is not None and (row == stop_id).any():
                row = row[: int(np.argmax(row == stop_id))]
            result.append(row)
        return result
