"""Aggregate throughput of K packed models against the same K models trained one after another.

One after another, K models train at the speed of one: the sequential baseline is K steps of the trainer's own single
step (``step.train_step``), the packed one a step of ``training.packed.packed_step`` over the same K·B windows. On a
shared CPU the two are timed in pairs, back to back in alternating order, and the median ratio over the pairs is
reported, so a noisy neighbour hurts both alike. ``--e2e K`` also times the whole loops, ``train_pack`` over K streams against K ``train()``
calls (curves, a checkpoint per model at the end, result files), to show the pack's bookkeeping costs nothing.

Prints one JSON line per measurement and a final JSON object (also written to $OUT/train_packed.json when OUT is set).

    .venv/bin/python bench/train_packed.py [--presets nano micro] [--ks 1 2 4 8 16] [--pairs 3] [--threads 1]
    python bench/gpu_packed.py   # the same on a GPU, plus K processes at once
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bookmix.models.config import ModelConfig, preset
from bookmix.models.model import LM
from bookmix.models.packed import PackedLM
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.config import TrainConfig
from bookmix.training.device import compute_dtype, enable_fast_math
from bookmix.training.loop import train
from bookmix.training.pack_size import cpu_pack_cap
from bookmix.training.packed import train_pack
from bookmix.training.packed_adamw import PackedAdamW
from bookmix.training.packed_step import packed_step
from bookmix.training.step import make_optimizer, train_step


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def single_stepper(cfg: ModelConfig, batch: int, seq_len: int, dev: torch.device, compile: bool = False):
    """One optimizer step of one model, as the single trainer takes it (``step.train_step``); returns its loss."""
    dtype = compute_dtype(dev, "auto")
    tcfg = TrainConfig(micro_batch=batch)
    model = LM(cfg, seed=0).to(dev)
    runner = torch.compile(model) if compile else model
    opt = make_optimizer(model, tcfg, dev)
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, cfg.vocab_size, (batch, seq_len + 1), generator=gen) for _ in range(2)]

    def step(i: int) -> torch.Tensor:
        return train_step(runner, opt, batches[i % 2], micro_batch=batch, lr=1e-3, grad_clip=1.0, device=dev,
                          dtype=dtype)[0]

    return step


def packed_stepper(cfg: ModelConfig, k: int, batch: int, seq_len: int, dev: torch.device, compile: bool = False):
    """One optimizer step of a pack of K models (``packed.packed_step``); returns the (K,) losses. As ``train_pack``
    does, a CPU pack above ``cpu_pack_cap`` runs as sub-packs of that size one after another."""
    dtype = compute_dtype(dev, "auto")
    cap = cpu_pack_cap(cfg, batch, seq_len) if dev.type == "cpu" else k
    sizes = [min(cap, k - lo) for lo in range(0, k, cap)]
    lm = LM(cfg, seed=0)
    gen = torch.Generator().manual_seed(0)
    steps = []
    for size in sizes:
        pack = PackedLM(cfg, size).to(dev)
        for slot in range(size):  # the same init in every slot: throughput does not depend on the values
            pack.set_member(slot, dict(lm.named_parameters()))
        runner = torch.compile(pack) if compile else pack
        opt = PackedAdamW(pack, TrainConfig(micro_batch=batch))
        batches = [torch.randint(0, cfg.vocab_size, (size, batch, seq_len + 1), generator=gen) for _ in range(2)]
        counts = torch.full((size,), batch)
        steps.append((runner, opt, batches, counts, size))

    def step(i: int) -> torch.Tensor:
        return torch.cat([
            packed_step(runner, opt, batches[i % 2], counts, micro_batch=batch, lrs=[1e-3] * size, grad_clip=1.0,
                        device=dev, dtype=dtype)[0]
            for runner, opt, batches, counts, size in steps
        ])

    return step


def _timed(step, steps: int, warmup: int) -> float:  # noqa: ANN001
    """Seconds per step after ``warmup`` untimed ones; the loss is read once at the end (one host sync)."""
    for i in range(warmup):
        float(step(i).sum())
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(i)
    float(loss.sum())
    return (time.perf_counter() - t0) / steps


def single_rate(cfg: ModelConfig, batch: int, seq_len: int, dev: torch.device, steps: int, warmup: int = 2,
                compile: bool = False) -> float:
    """Tokens/s of one model: also the aggregate of K models trained one after another."""
    return batch * seq_len / _timed(single_stepper(cfg, batch, seq_len, dev, compile), steps, warmup)


def packed_rate(cfg: ModelConfig, k: int, batch: int, seq_len: int, dev: torch.device, steps: int, warmup: int = 2,
                compile: bool = False) -> float:
    """Aggregate tokens/s (all K models) of the packed step."""
    return k * batch * seq_len / _timed(packed_stepper(cfg, k, batch, seq_len, dev, compile), steps, warmup)


def paired(cfg: ModelConfig, k: int, batch: int, seq_len: int, dev: torch.device, pairs: int) -> dict:
    """Noise-robust comparison for a shared CPU: each pair times K single steps (K models one after another do
    that much work) and one packed step back to back, in alternating order; medians over the pairs."""
    single = single_stepper(cfg, batch, seq_len, dev)
    packed = packed_stepper(cfg, k, batch, seq_len, dev)
    float(single(0))
    float(packed(0).sum())
    seq_s, pack_s = [], []
    for i in range(pairs):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            if which == 0:
                for j in range(k):
                    loss = single(j)
                float(loss)
                seq_s.append(time.perf_counter() - t0)
            else:
                float(packed(i).sum())
                pack_s.append(time.perf_counter() - t0)
    tokens = k * batch * seq_len
    ratios = [a / b for a, b in zip(seq_s, pack_s, strict=True)]
    return {"sequential_tokens_per_s": tokens / float(np.median(seq_s)), "packed_tokens_per_s": tokens / float(np.median(pack_s)),
            "ratio": float(np.median(ratios)), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def end_to_end(cfg: ModelConfig, k: int, batch: int, seq_len: int, steps: int, dev: torch.device) -> dict:
    """Wall time of train_pack over K streams against K train() calls, same streams, same settings."""
    tokens = [np.random.default_rng(s).integers(0, cfg.vocab_size, steps * batch * seq_len + seq_len + 1)
              .astype(np.uint16) for s in range(k)]
    streams = [ArrayWindows(t, seq_len) for t in tokens]
    tcfg = TrainConfig(micro_batch=batch, log_every=10, checkpoint_seconds=0, device=str(dev))
    root = Path(tempfile.mkdtemp(prefix="bookmix-packed-bench-"))
    try:
        t0 = time.perf_counter()
        for s, stream in enumerate(streams):
            train(cfg, tcfg.model_copy(update={"seed": s}), stream, root / f"single{s}", device=dev)
        seq_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        train_pack(cfg, tcfg, streams, [root / f"pack{s}" for s in range(k)], device=dev, seeds=list(range(k)))
        pack_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total = k * steps * batch * seq_len
    return {"k": k, "steps": steps, "sequential_s": seq_s, "packed_s": pack_s, "sequential_tokens_per_s": total / seq_s,
            "packed_tokens_per_s": total / pack_s, "ratio": seq_s / pack_s}


def sweep(presets: list[str], ks: list[int], vocab: int, seq_len: int, batch: int, pairs: int,
          dev: torch.device) -> dict:
    """Paired packed-vs-sequential figures per preset and K; prints a JSON line per measurement."""
    out: dict = {}
    for name in presets:
        cfg = preset(name, vocab_size=vocab)
        rows = []
        for k in ks:
            row = {"preset": name, "k": k, **paired(cfg, k, batch, seq_len, dev, pairs)}
            print(json.dumps(row), flush=True)
            rows.append(row)
        out[name] = {"params": cfg.total_params, "rows": rows}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["nano", "micro"])
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    ap.add_argument("--vocab", type=int, default=4096)  # small for CPU: the output layer dominates otherwise
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--e2e", type=int, default=0, help="also time train_pack vs K train() calls for this K (nano)")
    ap.add_argument("--e2e-steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device("cpu")
    enable_fast_math(dev)  # what both trainers do first: on a CPU, glibc keeps freed memory (keep_host_memory)

    report = {"device": "cpu", "threads": args.threads, "torch": torch.__version__, "vocab": args.vocab,
              "seq_len": args.seq_len, "micro_batch": args.micro_batch, "pairs": args.pairs}
    report["presets"] = sweep(args.presets, args.ks, args.vocab, args.seq_len, args.micro_batch, args.pairs, dev)
    if args.e2e:
        cfg = preset(args.presets[0], vocab_size=args.vocab)
        report["end_to_end"] = end_to_end(cfg, args.e2e, args.micro_batch, args.seq_len, args.e2e_steps, dev)
        print(json.dumps({"end_to_end": report["end_to_end"]}), flush=True)
    print(json.dumps(report))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "train_packed.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
