"""How right is the forecast, where it can be wrong? Forecast ÷ measured wall time, printed per case.

    python bench/forecast_accuracy.py                                   # runs (a) and (b) on this machine's CPU
    python bench/forecast_accuracy.py --device cuda --presets nano micro small --targets 60 120 180
    python bench/forecast_accuracy.py --campaign examples/demo.yaml     # (c): a whole campaign, by stage
    python bench/forecast_accuracy.py --real-books ../shared/books     # (c): a small campaign on 40 real books

Training runs (``--presets``; each run sized to take about its ``--targets`` seconds, trained in this process with
``bookmix.training.loop.train`` on random tokens, its time measured). Each measured run is forecast three ways:

- **uncalibrated**: the shipped defaults (``bookmix.forecast.defaults``: the CPU's measured matmul peak × a default
  MFU by size; a GPU's datasheet peak × the default MFU) — what a user sees before running `bookmix bench`;
- **calibrated**: a `bookmix bench` of the same preset (``bookmix.training.bench.bench``, ``--calibrate-s``
  seconds), measured right before the run — only shows that throughput is stable;
- **cross-preset**: the other preset's calibration, rescaled by the default MFU ratio of the two sizes (what the
  forecast does for a preset you have not benched).

Each case runs ``--repeats`` times (calibrations, runs and forecasts anew); the medians are printed. Timings run in
this process, so the forecast's process start-up is 0; the held-out evaluation and the final checkpoint are in both.

Campaign (``--campaign YAML``): the pipeline runs into a fresh folder (``--campaign-out``, default a temporary one)
through ``bookmix.campaign.runner.run_campaign``, which forecasts every stage before training and measures each;
the bench prints forecast, measured and the ratio by stage. ``--calibrate PRESET`` benches that preset first (as
`bookmix bench --model PRESET` would), otherwise the forecast is uncalibrated. Calibrations go to a temporary
BOOKMIX_HOME unless ``--home`` is given.

On a shared machine every figure moves with the neighbours' load: the load average is printed beside each result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bookmix.forecast import Overheads, estimate
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
    result = bench(
        cfg, micro_batch=case.micro_batch, seq_len=args.seq_len, device=args.device, seconds=args.calibrate_s
    )
    save_bench_calibration(result)
    return result.calibration()


def forecast_s(case: Case, args, device_key: str, tokens: int, calibration: dict | None) -> float:
    cfg = preset(case.name, vocab_size=args.vocab)
    fc = estimate(
        cfg,
        tokens=[tokens],
        device=device_key,
        calibration=calibration,
        micro_batch=case.micro_batch,
        seq_len=args.seq_len,
        dtype="fp32" if device_key == "cpu" else "bf16",
        # the trainer's defaults for a run this short: one held-out evaluation and one checkpoint, both at the end
        overheads=Overheads(
            startup_s=0.0, compile=False, evals=1, eval_tokens=args.eval_windows * args.seq_len, checkpoints=1
        ),
    )
    return fc.rows[0].seconds


def measure_run(case: Case, args, tokens_per_s: float, out: Path) -> tuple[float, int]:
    """(measured seconds, tokens) of one full run sized to about ``case.target_s`` at ``tokens_per_s``."""
    cfg = preset(case.name, vocab_size=args.vocab)
    step_tokens = case.micro_batch * args.seq_len
    n_steps = max(4, round(case.target_s * tokens_per_s / step_tokens))
    stream = random_windows(n_steps * step_tokens, args.vocab, args.seq_len, seed=2)
    heldout = random_windows(args.eval_windows * args.seq_len + args.seq_len, args.vocab, args.seq_len, seed=3)
    tcfg = TrainConfig(micro_batch=case.micro_batch, eval_windows=args.eval_windows, device=args.device)
    t0 = time.perf_counter()
    result = train(cfg, tcfg, stream, out, heldout=heldout, device=args.device)
    measured = time.perf_counter() - t0
    assert result.tokens == stream.total_tokens, (result.tokens, stream.total_tokens)
    return measured, stream.total_tokens


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def run_training_cases(args, device_key: str, tmp: Path) -> None:
    cases = [Case(n, mb, t) for n, mb, t in zip(args.presets, args.micro_batches, args.targets, strict=True)]
    ratios: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.repeats):
        # calibrate every preset, then run each right after its own calibration's neighbour (a shared CPU drifts)
        cals = {}
        for i, case in enumerate(cases):
            cals[case.name] = calibrate(case, args)
            measured, tokens = measure_run(case, args, cals[case.name]["tokens_per_s"], tmp / f"run-{rep}-{i}")
            other = cases[(i + 1) % len(cases)].name if len(cases) > 1 else None
            if other is not None and other not in cals:
                cals[other] = calibrate(cases[(i + 1) % len(cases)], args)
            forecasts = {
                "uncalibrated": forecast_s(case, args, device_key, tokens, None),
                "calibrated": forecast_s(case, args, device_key, tokens, cals[case.name]),
            }
            if other is not None:
                forecasts[f"from {other}"] = forecast_s(case, args, device_key, tokens, cals[other])
            for how, f in forecasts.items():
                ratios.setdefault((case.name, how), []).append(f / measured)
            print(
                f"[{rep + 1}/{args.repeats}] {case.name}: {tokens} tokens measured {measured:.1f} s; "
                + ", ".join(f"{how} {f:.1f} s (×{f / measured:.2f})" for how, f in forecasts.items())
                + f"; {load()}",
                flush=True,
            )
    print(f"\nforecast ÷ measured, median of {args.repeats} (min–max):")
    for (name, how), rs in ratios.items():
        print(f"  {name:6s} {how:14s} {statistics.median(rs):6.2f}  ({min(rs):.2f}–{max(rs):.2f})")


REAL_PIPELINE = {
    "campaign": {"name": "real-books"},
    "search": {
        "designs": [{"design": "random", "n": 6, "books_per_set": 3, "seed": 0, "recipe": {"sparsity": {"keep": 0.05}}}]
    },
    "model": {"preset": "nano", "overrides": {"n_layer": 2, "n_head": 2, "d_model": 64, "block_size": 128}},
    "train": {"micro_batch": 16, "lr": 0.003, "warmup": 5},
    "seeds": {"seeds": [0], "replicates": 0.34, "replicate_seeds": 1},
    "eval": {
        "suite": {
            "name": "real",
            "tasks": [{"name": "heldout", "type": "heldout_loss", "max_books": 2, "tokens_per_book": 2048, "by": []}],
            "objective": {"metric": "heldout/bpb", "direction": "minimize"},
        }
    },
    "selection": {"top_k": 3},
    "analysis": {"enabled": True},
    "report": {"enabled": "auto"},
    "executor": {"kind": "local", "workers": 1, "threads": 2, "trials_per_unit": 4},
}
"""A small real-book campaign (--real-books): 6 recipes of 3 books read at 5% (~30k tokens a trial) + 2 replicates of
the demo's tiny nano shape, analysis and report: a few minutes on two CPU cores."""


def real_books_pipeline(books: Path, tmp: Path, n_en: int = 30, n_ru: int = 10) -> Path:
    """Ingest the first ``n_en`` English and ``n_ru`` Russian books of ``books`` (../shared/books) and write the
    pipeline above over that library; returns the pipeline's path."""
    import yaml

    from bookmix.library import ingest

    src = tmp / "real-src"
    src.mkdir(parents=True, exist_ok=True)
    for lang, n in (("en", n_en), ("ru", n_ru)):
        for f in sorted((books / lang).glob("*.txt.gz"))[:n]:
            (src / f.name).symlink_to(f.resolve())
    t0 = time.perf_counter()
    report = ingest([src], tmp / "real-lib", tokenizer="train:4096", holdout=0.1, workers=1)
    print(f"ingested {n_en} + {n_ru} real books in {time.perf_counter() - t0:.0f} s: {report}")
    data = {**REAL_PIPELINE, "library": {"path": str(tmp / "real-lib")}}
    path = tmp / "real-books.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run_campaign_case(args, tmp: Path) -> None:
    from bookmix.campaign.runner import run_campaign
    from bookmix.config import load_pipeline

    if args.real_books:
        args.campaign = str(real_books_pipeline(Path(args.real_books), tmp))

    if args.calibrate:
        cfg = preset(args.calibrate)
        result = bench(cfg, device=args.device, seconds=args.calibrate_s)
        save_bench_calibration(result)
        print(f"calibrated {args.calibrate}: {result.tokens_per_s:,.0f} tokens/s")
    for rep in range(args.repeats):
        cfg = load_pipeline(args.campaign)
        cfg.campaign.out = Path(args.campaign_out or tmp / "campaign") / f"rep-{rep}"
        t0 = time.perf_counter()
        summary = run_campaign(cfg, show_progress=False)
        wall = time.perf_counter() - t0
        print(
            f"[{rep + 1}/{args.repeats}] {args.campaign} → {cfg.campaign.out}: {wall:.0f} s wall "
            f"(library {summary.stage_seconds.get('library', 0):.0f} s, not forecast); "
            f"forecast from {summary.plan.throughput_source}; {load()}"
        )
        for row in summary.forecast_vs_actual():
            ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
            print(
                f"  {row['stage']:12s} forecast {row['forecast_s']:8.1f} s   measured {row['actual_s'] or 0:8.1f} s"
                f"   ×{ratio}"
            )
        if args.json:
            print(
                json.dumps(
                    {"rep": rep, "forecast_vs_actual": summary.forecast_vs_actual(), "plan": summary.plan.to_dict()}
                )
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--presets", nargs="+", default=["nano", "micro"])
    p.add_argument("--micro-batches", nargs="+", type=int, default=[16, 8, 4])
    p.add_argument(
        "--targets", nargs="+", type=float, default=[30, 45, 60], help="seconds each measured run should take"
    )
    p.add_argument("--calibrate-s", type=float, default=10.0)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--eval-windows", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--campaign", help="a pipeline YAML: forecast and measure a whole campaign by stage instead")
    p.add_argument("--real-books", help="../shared/books: ingest 40 of them and run a small real-book campaign")
    p.add_argument("--campaign-out", help="folder for the campaign runs (default: a temporary one)")
    p.add_argument("--calibrate", help="with --campaign: bench this preset first (default: uncalibrated)")
    p.add_argument("--json", action="store_true", help="with --campaign: also print each run as one JSON line")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--home", help="BOOKMIX_HOME to store calibrations in (default: a temporary one)")
    args = p.parse_args()
    args.micro_batches = args.micro_batches[: len(args.presets)]
    args.targets = args.targets[: len(args.presets)]
    if args.threads:
        torch.set_num_threads(args.threads)

    tmp = Path(tempfile.mkdtemp(prefix="bookmix-forecast-bench-"))
    os.environ["BOOKMIX_HOME"] = args.home or str(tmp / "home")
    device_key = "cpu" if args.device == "cpu" else detect_device()
    print(
        f"device {device_key} ({args.device}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"peak {peak_flops(device_key) / 1e9:.1f} GFLOP/s, seq_len {args.seq_len}, vocab {args.vocab}; {load()}"
    )
    if args.campaign or args.real_books:
        run_campaign_case(args, tmp)
    else:
        run_training_cases(args, device_key, tmp)


if __name__ == "__main__":
    main()
