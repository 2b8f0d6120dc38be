"""How right is the forecast? Calibrate, forecast three training runs, run them, print forecast / measured.

    python bench/forecast_accuracy.py                  # this machine's CPU (or its GPU: --device cuda)
    python bench/forecast_accuracy.py --device cuda --presets nano micro small --targets 60 120 180

For each preset: a short `bookmix bench` (``bookmix.training.bench.bench``: the trainer's own step on random
tokens, timed after warm-up for ``--calibrate-s`` seconds) measures tokens/s and stores it as the calibration
(in a temporary BOOKMIX_HOME unless ``--home`` is given). Then a full run is sized to take about its target time,
forecast with ``bookmix.forecast.estimate`` from that calibration (same micro-batch, sequence length, final
evaluation and checkpoint as the run), trained, and timed. The goal: every ratio within 0.85–1.15.

Timings run in this process, so the forecast's process start-up is 0. The held-out evaluation and the final
checkpoint are in both the forecast and the measurement; model build and the first step's warm-up only in the
measurement (a second or two: a few percent of a 1–3 minute run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bookmix.forecast import Overheads, estimate, load_calibration
from bookmix.forecast.hardware import detect_device, peak_flops
from bookmix.models.config import preset
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.bench import bench, save_bench_calibration
from bookmix.training.config import TrainConfig
from bookmix.training.loop import train


@dataclass(frozen=True)
class Case:
    name: str
    micro_batch: int
    target_s: float


def random_windows(n_tokens: int, vocab: int, seq_len: int, seed: int) -> ArrayWindows:
    """Timing does not depend on the text, so uniform random ids stand in for a library."""
    tokens = np.random.default_rng(seed).integers(0, vocab, n_tokens + 1, dtype=np.int64).astype(np.uint16)
    return ArrayWindows(tokens, seq_len)


def calibrate(case: Case, args) -> dict:
    """`bookmix bench` in-process: steady-state throughput of the trainer's own step, stored as the calibration."""
    cfg = preset(case.name, vocab_size=args.vocab)
    result = bench(cfg, micro_batch=case.micro_batch, seq_len=args.seq_len, device=args.device, seconds=args.calibrate_s)
    save_bench_calibration(result)
    return result.calibration()


def run_case(case: Case, args, device_key: str, out: Path) -> tuple[float, float, int]:
    """(forecast seconds, measured seconds, tokens) of one full run sized to about ``case.target_s``."""
    cfg = preset(case.name, vocab_size=args.vocab)
    cal = load_calibration(device_key, case.name)
    step_tokens = case.micro_batch * args.seq_len
    n_steps = max(4, round(case.target_s * cal["tokens_per_s"] / step_tokens))
    stream = random_windows(n_steps * step_tokens, args.vocab, args.seq_len, seed=2)
    heldout = random_windows(args.eval_windows * args.seq_len + args.seq_len, args.vocab, args.seq_len, seed=3)
    tcfg = TrainConfig(micro_batch=case.micro_batch, eval_windows=args.eval_windows, device=args.device)
    fc = estimate(
        cfg,
        tokens=[stream.total_tokens],
        device=device_key,
        calibration=cal,
        micro_batch=case.micro_batch,
        seq_len=args.seq_len,
        dtype="fp32" if device_key == "cpu" else "bf16",
        # the trainer's defaults for a run this short: one held-out evaluation and one checkpoint, both at the end
        overheads=Overheads(startup_s=0.0, compile=False, evals=1, eval_tokens=args.eval_windows * args.seq_len, checkpoints=1),
    )
    t0 = time.perf_counter()
    result = train(cfg, tcfg, stream, out, heldout=heldout, device=args.device)
    measured = time.perf_counter() - t0
    assert result.tokens == stream.total_tokens, (result.tokens, stream.total_tokens)
    return fc.rows[0].seconds, measured, stream.total_tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--presets", nargs=3, default=["nano", "micro", "mini"])
    p.add_argument("--micro-batches", nargs=3, type=int, default=[16, 8, 4])
    p.add_argument("--targets", nargs=3, type=float, default=[60, 120, 180], help="seconds each measured run should take")
    p.add_argument("--calibrate-s", type=float, default=15.0)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--eval-windows", type=int, default=16)
    p.add_argument("--home", help="BOOKMIX_HOME to store calibrations in (default: a temporary one)")
    args = p.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bookmix-forecast-bench-"))
    os.environ["BOOKMIX_HOME"] = args.home or str(tmp / "home")
    device_key = "cpu" if args.device == "cpu" else detect_device()
    print(f"device {device_key} ({args.device}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"peak {peak_flops(device_key) / 1e9:.1f} GFLOP/s, seq_len {args.seq_len}, vocab {args.vocab}")
    cases = [Case(n, mb, t) for n, mb, t in zip(args.presets, args.micro_batches, args.targets, strict=True)]
    ratios = []
    # calibrate each preset right before its run, so both see the same machine (a shared CPU's load drifts)
    for i, case in enumerate(cases):
        rec = calibrate(case, args)
        forecast_s, measured_s, tokens = run_case(case, args, device_key, tmp / f"run-{i}")
        ratio = forecast_s / measured_s
        ratios.append(ratio)
        params = preset(case.name, vocab_size=args.vocab).total_params
        print(f"{case.name:6s} {params / 1e6:6.2f}M params, micro-batch {case.micro_batch:3d}: calibrated "
              f"{rec['tokens_per_s']:9.1f} tokens/s = {rec['flops_per_s'] / 1e9:7.2f} GFLOP/s (MFU {rec['mfu']:.1%}); "
              f"run of {tokens} tokens: forecast {forecast_s:7.1f} s, measured {measured_s:7.1f} s, ratio {ratio:.3f} "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)",
              flush=True)
    inside = all(0.85 <= r <= 1.15 for r in ratios)
    print(f"forecast/measured: min {min(ratios):.3f}, max {max(ratios):.3f}; all within 0.85–1.15: {inside}")


if __name__ == "__main__":
    main()
