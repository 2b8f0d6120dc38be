"""Overhead of bookmix's training loop over a bare PyTorch loop of the same shape, on CPU.

Both train the same model (same seed) on the same windows with the same AdamW, clipping and schedule-free peak
rate; ours adds what a real run needs: windows gathered from a WindowSource, the learning-rate schedule, a curve
record every 10 steps, divergence tracking, the final checkpoint and result.json. Rounds alternate (bare, ours)
and the best of each is kept, so a noisy neighbour hurts both alike. Prints one JSON object.

    .venv/bin/python bench/train_overhead.py [--preset nano] [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bookmix.models.config import preset
from bookmix.models.model import LM
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.config import TrainConfig
from bookmix.training.loop import train


def bare(cfg, batches: list[torch.Tensor], tcfg: TrainConfig) -> float:
    """The loop everyone writes first: forward, backward, clip, step. Returns seconds (model build included)."""
    t0 = time.perf_counter()
    model = LM(cfg, seed=tcfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, betas=tcfg.betas, weight_decay=tcfg.weight_decay)
    for b in batches:
        _, loss = model(b[:, :-1], b[:, 1:])
        loss.backward()
        loss = loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    loss.item()
    return time.perf_counter() - t0


def ours(cfg, stream: ArrayWindows, tcfg: TrainConfig) -> float:
    out = Path(tempfile.mkdtemp(prefix="bookmix-overhead-"))
    try:
        t0 = time.perf_counter()
        train(cfg, tcfg, stream, out, device="cpu")
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="nano")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = preset(args.preset, vocab_size=args.vocab)
    t, b = args.seq_len, args.micro_batch
    tokens = np.random.default_rng(0).integers(0, args.vocab, args.steps * b * t + t + 1).astype(np.uint16)
    stream = ArrayWindows(tokens, t)
    tcfg = TrainConfig(micro_batch=b, schedule="cosine", log_every=10, checkpoint_seconds=0, device="cpu")
    n_steps = -(-stream.n_windows // b)
    batches = [torch.from_numpy(stream.windows(i * b, min((i + 1) * b, stream.n_windows)).astype(np.int64))
               for i in range(n_steps)]

    bare_s, ours_s = [], []
    for _ in range(args.rounds):
        bare_s.append(bare(cfg, batches, tcfg))
        ours_s.append(ours(cfg, stream, tcfg))
    n_tokens = stream.n_windows * t
    report = {
        "preset": args.preset, "vocab": args.vocab, "seq_len": t, "micro_batch": b, "steps": n_steps,
        "threads": args.threads, "torch": torch.__version__,
        "bare_tokens_per_s": n_tokens / min(bare_s), "ours_tokens_per_s": n_tokens / min(ours_s),
        "overhead_ratio": min(ours_s) / min(bare_s), "bare_s": bare_s, "ours_s": ours_s,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
