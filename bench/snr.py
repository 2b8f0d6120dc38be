"""Signal per trial on real books: the ratio of recipe spread to seed spread, for training settings at equal compute.

A campaign can only rank what differs between recipes by more than what differs between seeds of one recipe. This
bench trains R random recipes of K real English books (from ../shared/books), each over S seeds, with every setting
in ``CONFIGS`` at the same number of trained tokens (equal compute: FLOPs = 6 N D with N and D fixed), scores each
model's held-out loss on held-out real books, and reports the one-way ANOVA noise floor of
:mod:`bookmix.analysis.noise`: replicate (seed) std, noise-corrected recipe signal std, and their ratio.

Settings are chosen on one half of the books and seeds (``--split choose``) and reported on the other half
(``--split report``): the books are split by a hash of their file name, and the recipe and trial seeds differ.

    .venv/bin/python bench/snr.py --split choose --configs today small_steps small_steps_zero_floor
    .venv/bin/python bench/snr.py --split report --configs today shipped
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BOOKS = REPO.parent / "shared" / "books"
OUT = REPO / "bench" / "out"


@dataclass(frozen=True)
class Setting:
    """One way of training a trial: TrainConfig fields over the defaults, and the model preset with overrides."""

    train: dict[str, Any] = field(default_factory=dict)
    model: str = "nano"
    overrides: dict[str, Any] = field(default_factory=lambda: dict(SHAPE))
    note: str = ""


# The trial the reproducibility report measured (issue 16): a nano-shaped model, the TrainConfig defaults, 131k
# tokens. Everything else here trains the same tokens with the same model: only how the steps are taken differs.
# The shape is the demo's (2 layers, d 64, T 128): nano's full 6 x 128 costs ~1 CPU-minute a trial, this ~10 s, and a
# bench of a hundred trials has to fit a CPU session.
TOKENS = 131_072
SHAPE = {"n_layer": 2, "n_head": 2, "d_model": 64, "block_size": 128}
CONFIGS: dict[str, Setting] = {
    "today": Setting(
        {"micro_batch": 16, "lr": 1e-3, "min_lr_ratio": 0.1, "warmup": 0.02, "schedule": "cosine"},
        note="TrainConfig defaults at the time of issue 16: micro-batch 16 (32 steps), lr 1e-3, "
        "cosine to 0.1 of the peak",
    ),  # fmt: skip
    "small_steps": Setting({"micro_batch": 4}, note="micro-batch 4: 128 steps of 4 windows"),
    "small_steps_zero_floor": Setting({"micro_batch": 4, "min_lr_ratio": 0.0}, note="... and cosine to 0"),
    "small_steps_lr3": Setting({"micro_batch": 4, "lr": 3e-3}, note="micro-batch 4, lr 3e-3"),
    "shipped": Setting(note="the TrainConfig defaults of this checkout"),
}


@dataclass(frozen=True)
class Split:
    name: str
    recipe_seed: int
    trial_seeds: tuple[int, ...]
    half: int  # books whose name hashes to this parity


SPLITS = {
    "choose": Split("choose", recipe_seed=0, trial_seeds=(0, 1, 2), half=0),
    "report": Split("report", recipe_seed=1000, trial_seeds=(10, 11, 12), half=1),
}


def english_books(half: int, n_train: int, n_holdout: int) -> tuple[list[Path], list[Path]]:
    """Mid-sized English books of one half (by a hash of the file name): training pool and held-out books."""
    rows = list(csv.DictReader((BOOKS / "catalog.csv").open(encoding="utf-8")))
    en = [r for r in rows if r["lang"] == "en" and 150_000 <= int(r["bytes"]) <= 1_500_000]
    mine = sorted(
        (r for r in en if hashlib.sha256(r["file"].encode()).digest()[0] % 2 == half), key=lambda r: r["file"]
    )
    rng = np.random.default_rng(half)
    picked = [mine[i] for i in rng.permutation(len(mine))[: n_train + n_holdout]]
    paths = [BOOKS / r["file"] for r in picked]
    return paths[:n_train], paths[n_train:]


def build_library(split: Split, n_train: int, n_holdout: int, vocab: int) -> Path:
    """Ingest the split's books once (cached under bench/out/)."""
    from bookmix.library import ingest

    lib = OUT / f"snr-lib-{split.name}-{n_train}-{n_holdout}-{vocab}"
    if (lib / "catalog.sqlite").exists():
        return lib
    train, held = english_books(split.half, n_train, n_holdout)
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "books"
    src.mkdir()
    for p in train + held:
        (src / p.name).symlink_to(p)
    holdout = tmp / "holdout.txt"
    holdout.write_text("".join(p.name + "\n" for p in held), encoding="utf-8")
    ingest([src], lib, tokenizer=f"train:{vocab}", holdout_books=holdout, workers=1)
    shutil.rmtree(tmp)
    return lib


def recipes(lib: Path, n: int, per_set: int, seed: int) -> list[Any]:
    from bookmix.library import Library
    from bookmix.recipes.designs import parse_design, run_design

    return run_design(parse_design({"design": "random", "n": n, "books_per_set": per_set, "seed": seed,
                                    "recipe": {"epochs": 4}}), Library.open(lib))  # fmt: skip


def run_setting(name: str, lib: Path, recs: list[Any], seeds: tuple[int, ...], tokens: int, work: Path) -> dict:
    from bookmix.analysis.noise import noise_floor
    from bookmix.models.config import preset
    from bookmix.training.config import TrainConfig
    from bookmix.training.recipe_run import train_recipe

    s = CONFIGS[name]
    losses, groups, secs = [], [], []
    for i, r in enumerate(recs):
        for seed in seeds:
            cfg = TrainConfig.from_dict({**s.train, "max_tokens": tokens, "seed": seed, "log_every": 1000,
                                         "checkpoint_seconds": 0, "device": "cpu"})  # fmt: skip
            model = preset(s.model, **s.overrides)
            out = work / f"{name}-{i}-{seed}"
            t0 = time.perf_counter()
            res = train_recipe(lib, r, model, cfg, out)
            secs.append(time.perf_counter() - t0)
            shutil.rmtree(out, ignore_errors=True)
            losses.append(res.heldout_loss)
            groups.append(i)
            assert res.tokens == tokens, f"{name}: trained {res.tokens} tokens, not {tokens}: recipe too short"
    nf = noise_floor(np.array(losses, dtype=float), np.array(groups), "heldout/loss")
    return {
        "setting": name,
        "note": s.note,
        "train": s.train,
        "replicate_std": nf.replicate_std,
        "signal_std": nf.signal_std,
        "ratio": nf.snr,
        "p_value": nf.p_value,
        "mean_loss": float(np.mean(losses)),
        "trials": len(losses),
        "tokens_per_trial": tokens,
        "seconds_per_trial": float(np.mean(secs)),
        "losses": losses,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", choices=sorted(SPLITS), default="choose")
    ap.add_argument("--configs", nargs="+", default=["today", "shipped"], choices=sorted(CONFIGS))
    ap.add_argument("--recipes", type=int, default=12)
    ap.add_argument("--per-set", type=int, default=6)
    ap.add_argument("--books", type=int, default=40, help="training books in the split's library")
    ap.add_argument("--holdout", type=int, default=6, help="held-out books scored by every trial")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--tokens", type=int, default=TOKENS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    if not BOOKS.is_dir():
        raise SystemExit(f"{BOOKS}: the shared real books are not here; this bench needs them")
    import torch

    torch.set_num_threads(args.threads)
    split = SPLITS[args.split]
    OUT.mkdir(parents=True, exist_ok=True)
    lib = build_library(split, args.books, args.holdout, args.vocab)
    recs = recipes(lib, args.recipes, args.per_set, split.recipe_seed)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.configs:
            row = run_setting(name, lib, recs, split.trial_seeds, args.tokens, Path(work))
            rows.append(row)
            print(f"{args.split} {name:24s} ratio {row['ratio']:.3f}  signal {row['signal_std']:.4f}  "
                  f"seed {row['replicate_std']:.4f}  p {row['p_value']:.2g}  loss {row['mean_loss']:.3f}  "
                  f"{row['seconds_per_trial']:.1f} s/trial  ({row['trials']} trials x {args.tokens} tokens)",
                  flush=True)  # fmt: skip
    base = next((r for r in rows if r["setting"] == "today"), None)
    if base and base["ratio"]:
        for r in rows:
            print(f"  {r['setting']:24s} ratio / today's: {r['ratio'] / base['ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "args": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
