"""Signal per trial on real books: the ratio of recipe spread to seed spread, for training settings at equal compute.

A campaign can only rank what differs between recipes by more than what differs between seeds of one recipe. This
bench trains R random recipes of K real English books (from ../shared/books), each over S seeds, with every setting
in ``CONFIGS`` at the same number of trained tokens (equal compute: FLOPs = 6 N D with N and D fixed), scores each
model's held-out loss on held-out real books, and reports the noise floor of :mod:`bookmix.analysis.noise` two
ways: one-way (every seed difference counted as noise, the analysis before issue 16) and paired (each seed's common
effect removed: every recipe of a setting is trained at the same seeds, as in a campaign, so only the recipe x seed
interaction can reorder recipes). Replicate std, noise-corrected recipe signal std, and their ratio.

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
    "lr3": Setting({"micro_batch": 16, "lr": 3e-3, "min_lr_ratio": 0.1}, note="micro-batch 16, lr 3e-3"),
    "lr_low": Setting({"micro_batch": 16, "lr": 3e-4, "min_lr_ratio": 0.1}, note="micro-batch 16, lr 3e-4"),
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
    """Ingest the split's books once (cached under bench/out/; an ingest killed half-way is resumed)."""
    from bookmix.errors import BookmixError
    from bookmix.library import Library, ingest

    lib = OUT / f"snr-lib-{split.name}-{n_train}-{n_holdout}-{vocab}"
    if (lib / "catalog.sqlite").exists():
        try:
            Library.open(lib)
            return lib
        except BookmixError:
            pass
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


def spread_windows(lib: Any, seq_len: int, n_windows: int) -> np.ndarray:
    """``n_windows`` windows spread evenly through the whole of every held-out book (not just its opening pages):
    the text a recipe is meant to teach, rather than title pages and tables of contents."""
    books = sorted((b for b in lib.books(split="holdout") if b.tokens > 2 * (seq_len + 1)), key=lambda b: b.id)
    per = -(-n_windows // len(books))
    out = []
    for b in books:
        toks = np.asarray(lib.tokens(b.id), dtype=np.int64)
        starts = np.linspace(len(toks) * 0.02, len(toks) - seq_len - 2, per).astype(np.int64)
        out.append(np.stack([toks[s : s + seq_len + 1] for s in starts]))
    return np.concatenate(out)


def eval_sets(lib_dir: Path, seq_len: int) -> dict[str, np.ndarray]:
    from bookmix.library import Library
    from bookmix.recipes.heldout import holdout_windows
    from bookmix.training.evaluate import sample_windows

    lib = Library.open(lib_dir)
    return {
        "open64": sample_windows(holdout_windows(lib, seq_len, 64), 64),
        "spread512": spread_windows(lib, seq_len, 512),
    }


def run_setting(name: str, lib: Path, recs: list[Any], seeds: tuple[int, ...], tokens: int, work: Path) -> dict:
    import torch

    from bookmix.analysis.noise import noise_floor
    from bookmix.models.config import preset
    from bookmix.training.checkpoint import load_model
    from bookmix.training.config import TrainConfig
    from bookmix.training.evaluate import heldout_loss
    from bookmix.trial import train_recipe

    s = CONFIGS[name]
    losses, groups, secs = [], [], []
    evals = eval_sets(lib, SHAPE["block_size"] if s.model == "nano" else preset(s.model).block_size)
    extra: dict[str, list[float]] = {k: [] for k in evals}
    for i, r in enumerate(recs):
        for seed in seeds:
            cfg = TrainConfig.from_dict({**s.train, "max_tokens": tokens, "seed": seed, "log_every": 1000,
                                         "checkpoint_seconds": 0, "device": "cpu"})  # fmt: skip
            model = preset(s.model, **s.overrides)
            out = work / f"{name}-{i}-{seed}"
            t0 = time.perf_counter()
            res = train_recipe(lib, r, model, cfg, out)
            secs.append(time.perf_counter() - t0)
            m, _, _ = load_model(out)
            for k, w in evals.items():
                extra[k].append(heldout_loss(m, w, 32, torch.device("cpu"), torch.float32))
            shutil.rmtree(out, ignore_errors=True)
            losses.append(res.heldout_loss)
            groups.append(i)
            assert res.tokens == tokens, f"{name}: trained {res.tokens} tokens, not {tokens}: recipe too short"
    groups_a, seeds_a = np.array(groups), np.tile(np.array(seeds), len(recs))
    nf = noise_floor(np.array(losses, dtype=float), groups_a, "heldout/loss")
    paired = noise_floor(np.array(losses, dtype=float), groups_a, "heldout/loss", seeds_a)
    by_eval = {}
    for k, v in extra.items():
        one, two = (noise_floor(np.array(v), groups_a, k, sd) for sd in (None, seeds_a))
        by_eval[k] = {"oneway_ratio": one.snr, "paired_ratio": two.snr, "seed_common_std": two.seed_std,
                      "paired_std": two.replicate_std, "signal_std": two.signal_std}  # fmt: skip
    return {
        "by_eval": by_eval,
        "paired_ratio": paired.snr,
        "paired_std": paired.replicate_std,
        "seed_common_std": paired.seed_std,
        "extra_losses": extra,
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
            print(f"{args.split} {name:24s} ratio {row['ratio']:.3f} (paired {row['paired_ratio']:.3f})  "
                  f"signal {row['signal_std']:.4f}  seed {row['replicate_std']:.4f} (paired {row['paired_std']:.4f}, "
                  f"common {row['seed_common_std']:.4f})  p {row['p_value']:.2g}  loss {row['mean_loss']:.3f}  "
                  f"{row['seconds_per_trial']:.1f} s/trial  ({row['trials']} trials x {args.tokens} tokens)",
                  flush=True)  # fmt: skip
            for k, e in row["by_eval"].items():
                print(f"    eval {k:10s} one-way {e['oneway_ratio']:.3f}  paired {e['paired_ratio']:.3f}  "
                      f"signal {e['signal_std']:.4f}  seeds' common {e['seed_common_std']:.4f}  "
                      f"paired std {e['paired_std']:.4f}", flush=True)  # fmt: skip
    base = next((r for r in rows if r["setting"] == "today"), None)
    if base and base["ratio"]:
        # Today's analysis counted the seeds' common effect as noise (one-way); the shipped one removes it (paired).
        for r in rows:
            print(f"  {r['setting']:24s} one-way ratio / today's: {r['ratio'] / base['ratio']:.2f}   "
                  f"paired (shipped analysis) / today's: {r['paired_ratio'] / base['ratio']:.2f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "args": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
