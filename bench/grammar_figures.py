"""Grammar benchmarks on real books: BLiMP for a nano model trained on English books, RuBLiMP for one trained on
Russian books, each against the same shape untrained. The figures in the README's "Grammar benchmarks" section.

Builds (once, reused under --work) a library of the first --books books of ../shared/books/<lang>, trains the nano
preset on its training books for --tokens tokens on CPU, and scores the benchmark from ../shared/evaldata (or
$BOOKMIX_EVALDATA) with --pairs pairs per paradigm. Prints one JSON object: accuracy ± standard error, how many
standard errors above chance, and the training time, for the untrained and the trained model. The headline is
``acc_same_length`` (the pairs of equal token length): the published full-sentence ``acc`` rewards an untrained model
for preferring the shorter sentence (RuBLiMP: ~57% with no training), so only the equal-length accuracy says whether
the model learned grammar; ``acc`` is printed beside it for the published reference points.

    PYTHONPATH=src .venv/bin/python bench/grammar_figures.py --lang en [--books 24] [--tokens 1500000] [--pairs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
BENCH = {"en": "blimp", "ru": "rublimp"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lang", choices=sorted(BENCH), default="en")
    ap.add_argument("--books", type=int, default=24)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--tokens", type=int, default=1_500_000, help="trained tokens")
    ap.add_argument("--pairs", type=int, default=200, help="pairs per paradigm")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bookmix-grammar"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("BOOKMIX_EVALDATA", str(SHARED / "evaldata"))

    from bookmix.evals import Suite, evaluate
    from bookmix.library import Library, ingest
    from bookmix.models.config import preset
    from bookmix.models.model import LM
    from bookmix.recipes import Recipe
    from bookmix.training.checkpoint import load_model
    from bookmix.training.config import TrainConfig
    from bookmix.trial import train_recipe

    lib_dir = args.work / f"lib-{args.lang}-{args.books}-{args.vocab}"
    if not (lib_dir / "catalog.sqlite").exists():
        files = sorted((SHARED / "books" / args.lang).glob("*.txt.gz"))[: args.books]
        ingest([str(f) for f in files], lib_dir, tokenizer=f"train:{args.vocab}", holdout=0.1, seed=0, workers=1)
    lib = Library.open(lib_dir)
    train_ids = [b.id for b in lib.books(split="train")]
    bench = BENCH[args.lang]
    suite = Suite.from_dict(
        {
            "name": bench,
            "tasks": [{"name": bench, "type": bench, "max_pairs_per_paradigm": args.pairs}],
            "objective": f"{bench}/acc",
        }
    )

    def score(model) -> dict:
        r = evaluate(model, suite, lib, device="cpu", batch_size=64)
        out = {"seconds": round(r.seconds, 1)}
        for name in ("acc", "acc_same_length"):  # published accuracy; the same on pairs of equal token length
            m = r.metrics[f"{bench}/{name}"]
            out[name] = {"value": round(m.value, 4), "stderr": round(m.stderr, 4), "n": m.n,
                         "se_above_chance": round((m.value - 0.5) / m.stderr, 1)}
        return out

    cfg = preset("nano", vocab_size=lib.vocab_size)
    torch.manual_seed(0)
    untrained = score(LM(cfg))
    run = args.work / f"run-{args.lang}-{args.books}-{args.vocab}-{args.tokens}"
    t0 = time.perf_counter()
    tcfg = TrainConfig(
        micro_batch=16, lr=3e-3, warmup=20, device="cpu", seed=0, max_tokens=args.tokens, checkpoint_seconds=60
    )
    res = train_recipe(lib_dir, Recipe(books=train_ids), cfg, tcfg, run)
    train_s = time.perf_counter() - t0
    model, _, _ = load_model(run, "cpu")
    trained = score(model)
    print(
        json.dumps(
            {
                "benchmark": bench,
                "books": len(train_ids),
                "library_tokens": int(sum(b.tokens for b in lib.books())),
                "model": cfg.name,
                "params": sum(p.numel() for p in model.parameters()),
                "trained_tokens": res.tokens,
                "train_seconds": round(train_s, 1),
                "heldout_loss": res.heldout_loss,
                "headline": "acc_same_length",
                "untrained": untrained,
                "trained": trained,
            }
        )
    )


if __name__ == "__main__":
    main()
