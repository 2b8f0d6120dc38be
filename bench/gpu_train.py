"""GPU throughput of the trainer, for a lent H100/H200: the `small` preset (125M with a 50k vocabulary) in bf16.

Measures, each in a fresh model: eager and torch.compile'd steps (tokens/s, achieved FLOP/s, MFU against the
device's bf16 peak, first-step time = compile time, peak memory), then a real `train()` run on random windows
with compile on, to see the loop's own overhead against the bare benchmark step. Goal (issue 5): small ≥ 40% MFU
(≥ 400k tokens/s on an H100), first step < 60 s.

Prints one JSON object and writes it to $OUT/gpu_train.json when OUT is set.

    python bench/gpu_train.py [--preset small] [--vocab 50304] [--micro-batch 32] [--seconds 15] [--skip-eager]
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

from bookmix.models.config import preset
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.bench import bench
from bookmix.training.config import TrainConfig
from bookmix.training.loop import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--vocab", type=int, default=50304)  # GPT-2's 50257 rounded up to a multiple of 64
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--train-steps", type=int, default=60)
    ap.add_argument("--skip-eager", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark is for a GPU")

    cfg = preset(args.preset, vocab_size=args.vocab)
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "preset": args.preset,
                    "params": cfg.total_params, "flops_per_token": cfg.flops_per_token(args.seq_len), "runs": {}}
    modes = [("compiled", True)] if args.skip_eager else [("eager", False), ("compiled", True)]
    for name, compile_ in modes:
        r = bench(cfg, micro_batch=args.micro_batch, seq_len=args.seq_len, device="cuda", seconds=args.seconds,
                  compile=compile_)
        report["runs"][name] = r.to_dict()
        print(json.dumps({name: r.to_dict()}), flush=True)
        torch.cuda.empty_cache()

    # The real loop on random windows: same shapes, compile on, logging every 10 steps, one final checkpoint.
    t, b = args.seq_len, args.micro_batch
    tokens = np.random.default_rng(0).integers(0, args.vocab, args.train_steps * b * t + t + 1).astype(np.uint16)
    out = Path(tempfile.mkdtemp(prefix="bookmix-gpu-"))
    try:
        t0 = time.perf_counter()
        res = train(cfg, TrainConfig(micro_batch=b, lr=6e-4, compile=True, log_every=10, checkpoint_seconds=0),
                    ArrayWindows(tokens, t), out, device="cuda")
        wall = time.perf_counter() - t0
        curve = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
        steady = [r["tokens_per_s"] for r in curve[2:]]  # after the compile-bearing first records
        report["train_loop"] = {"steps": res.steps, "wall_s": wall, "final_loss": res.final_loss,
                                "steady_tokens_per_s": float(np.median(steady)) if steady else None}
    finally:
        shutil.rmtree(out, ignore_errors=True)

    print(json.dumps(report))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_train.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
