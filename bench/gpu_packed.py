"""Packed training on a lent GPU (H100/H200): K packed models vs K one after another vs K processes at once.

For nano and micro (vocab 16384, T = 256, micro-batch 16, bf16 autocast, as a campaign trains them) it measures
- the single model's tokens/s (the trainer's own step): K models one after another train at this aggregate speed;
- the packed step's aggregate tokens/s for K in --ks; the ratio to the single model is the packing speed-up
  (issue 11's goal on an H100: ≥ 8× for nano, ≥ 3× for micro);
- K separate processes training one model each at the same time on the same GPU (what a user would try first):
  their summed tokens/s, over the same seconds.
and what ``auto_pack_size`` would choose. Prints one JSON line per measurement and a final JSON object, written to
$OUT/gpu_packed.json when OUT is set. ``--save-calibration`` stores pack and pack_speedup for the forecaster.

    python bench/gpu_packed.py [--presets nano micro] [--ks 1 8 16 32 64] [--procs 8] [--steps 20] [--compile]

About 4 minutes on an H100 with the defaults (eager; --compile adds a compilation per shape).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bookmix.models.config import preset  # noqa: E402
from bookmix.training.config import TrainConfig  # noqa: E402
from bookmix.training.device import enable_fast_math  # noqa: E402
from bookmix.training.pack_size import auto_pack_size  # noqa: E402
from train_packed import packed_rate, single_rate  # noqa: E402  (the CPU benchmark's measurements)


def worker(name: str, vocab: int, seq_len: int, batch: int, start_at: float, seconds: float) -> None:
    """One of K concurrent processes: warm up, wait for the common start, train one model for ``seconds``."""
    from bookmix.models.model import LM
    from bookmix.training.step import make_optimizer, train_step

    dev = torch.device("cuda")
    enable_fast_math(dev)
    cfg = preset(name, vocab_size=vocab)
    model = LM(cfg).to(dev)
    opt = make_optimizer(model, TrainConfig(micro_batch=batch), dev)
    data = torch.randint(0, vocab, (batch, seq_len + 1))

    def step() -> torch.Tensor:
        return train_step(model, opt, data, micro_batch=batch, lr=1e-3, grad_clip=1.0, device=dev,
                          dtype=torch.bfloat16)[0]

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    time.sleep(max(0.0, start_at - time.time()))
    t0, steps = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        loss = step()
        steps += 1
    float(loss)
    print(json.dumps({"tokens_per_s": steps * batch * seq_len / (time.perf_counter() - t0)}), flush=True)


def processes_rate(name: str, procs: int, vocab: int, seq_len: int, batch: int, seconds: float) -> float:
    """Summed tokens/s of ``procs`` processes each training one model on the GPU over the same window of time."""
    start_at = time.time() + 25.0 + 2.0 * procs  # time for every process to start torch and warm up
    cmd = [sys.executable, __file__, "--worker", name, "--vocab", str(vocab), "--seq-len", str(seq_len),
           "--micro-batch", str(batch), "--start-at", str(start_at), "--seconds", str(seconds)]
    running = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    rates = []
    for p in running:
        out, _ = p.communicate(timeout=300)
        rates.append(json.loads(out.strip().splitlines()[-1])["tokens_per_s"])
    return sum(rates)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["nano", "micro"])
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 8, 16, 32, 64])
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--procs", type=int, default=8, help="K processes at once (0: skip)")
    ap.add_argument("--proc-seconds", type=float, default=10.0)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--save-calibration", action="store_true")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark is for a GPU (bench/train_packed.py runs on CPU)")
    if args.worker:
        worker(args.worker, args.vocab, args.seq_len, args.micro_batch, args.start_at, args.seconds)
        return

    dev = torch.device("cuda")
    enable_fast_math(dev)
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "vocab": args.vocab,
                    "seq_len": args.seq_len, "micro_batch": args.micro_batch, "compile": args.compile, "presets": {}}
    t, b = args.seq_len, args.micro_batch
    for name in args.presets:
        cfg = preset(name, vocab_size=args.vocab)
        single = single_rate(cfg, b, t, dev, args.steps, warmup=3, compile=args.compile)
        entry: dict = {"params": cfg.total_params, "single_tokens_per_s": single,
                       "auto_pack_size": auto_pack_size(cfg, TrainConfig(micro_batch=b), dev, seq_len=t), "packed": []}
        print(json.dumps({"preset": name, "single_tokens_per_s": single}), flush=True)
        for k in args.ks:
            try:
                rate = packed_rate(cfg, k, b, t, dev, args.steps, warmup=3, compile=args.compile)
                row = {"k": k, "packed_tokens_per_s": rate, "ratio": rate / single,
                       "peak_memory_gb": torch.cuda.max_memory_allocated(dev) / 1e9}
            except torch.OutOfMemoryError:
                row = {"k": k, "error": "out of memory"}
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
            print(json.dumps({"preset": name, **row}), flush=True)
            entry["packed"].append(row)
        if args.procs:
            rate = processes_rate(name, args.procs, args.vocab, t, b, args.proc_seconds)
            entry["processes"] = {"procs": args.procs, "tokens_per_s": rate, "ratio": rate / single}
            print(json.dumps({"preset": name, "processes": entry["processes"]}), flush=True)
        report["presets"][name] = entry
        if args.save_calibration:
            from bookmix.forecast.calibration import save_calibration
            from bookmix.forecast.hardware import detect_device

            best = max((r for r in entry["packed"] if "ratio" in r), key=lambda r: r["ratio"])
            save_calibration({"device": detect_device(), "preset": name, "pack": best["k"],
                              "pack_speedup": best["ratio"]})

    print(json.dumps(report))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_packed.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
