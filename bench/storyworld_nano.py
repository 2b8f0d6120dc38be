"""Is storyworld's planted signal learnable by a real nano LM on a CPU? The with/without-books ablations, trained by
the real trainer and scored by the eval suite's Scorer.

Generates a storyworld, ingests it (BPE vocabulary --vocab), trains the nano preset (storyworld.nano's defaults:
block 32, micro-batch 4, lr 3e-3, 2 epochs) on all training books and on all but the books of each effect, and
prints, per effect: accuracy with and without the books, the paired effect and its standard error, z, the same
for log p(true answer), and the training time of each trial. Effects:

    fact_recall helps   removing the fact books (they state the facts)         expected: positive
    fact_recall hurts   removing the misleading books (they contradict facts)  expected: negative (they hurt)
    two_hop helps       removing a person's fact book and the rule book         expected: positive

The model trained on all books is shared by the three effects (one trial folder per recipe id, reused).

    .venv/bin/python bench/storyworld_nano.py [--books 20] [--tokens-per-book 8000] [--seed 7] [--vocab 2048]
        [--people-per-fact-book N] [--threads 1] [--out DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

EFFECTS = (("fact_recall", "helps"), ("fact_recall", "hurts"), ("two_hop", "helps"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=int, default=20)
    ap.add_argument("--tokens-per-book", type=int, default=8000)
    ap.add_argument("--people-per-fact-book", type=int, default=None, help="default: the generator's (6)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=None, help="default: storyworld.nano.NANO_EPOCHS")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="keep the world, library and trials here (resumable)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from bookmix.library import ingest
    from bookmix.storyworld import generate
    from bookmix.storyworld.learnability import ablation
    from bookmix.storyworld.nano import NANO_EPOCHS, NanoFit

    root = args.out or Path(tempfile.mkdtemp(prefix="storyworld-nano-"))
    t0 = time.perf_counter()
    knobs = {} if args.people_per_fact_book is None else {"people_per_fact_book": args.people_per_fact_book}
    manifest = generate(root / "sw", books=args.books, seed=args.seed, tokens_per_book=args.tokens_per_book, **knobs)
    # A re-run keeps the library's tokenizer (None): a small world trains fewer tokens than --vocab asks, and the
    # library refuses train:V again when the recorded vocabulary came out smaller.
    tokenizer = None if (root / "lib" / "catalog.sqlite").exists() else f"train:{args.vocab}"
    ingest(**manifest.ingest_kwargs(), library=root / "lib", tokenizer=tokenizer, workers=1)
    t_data = time.perf_counter() - t0
    fit = NanoFit(manifest, root / "lib", root / "runs", epochs=args.epochs or NANO_EPOCHS)

    rows = []
    for task, books in EFFECTS:
        t = time.perf_counter()
        e = ablation(manifest, task, books, fit=fit)
        rows.append({**e.to_dict(), "seconds": time.perf_counter() - t})
    trials = [
        {"recipe": rid, "steps": r.steps, "tokens": r.tokens, "train_s": r.seconds, "tokens_per_s": r.tokens_per_s}
        for rid, r in fit.results.items()
    ]
    report = {
        "world": {"books": args.books, "tokens_per_book": args.tokens_per_book, "seed": args.seed, "vocab": args.vocab,
                  "people_per_fact_book": manifest.settings["people_per_fact_book"], "counts": manifest.counts},
        "threads": args.threads, "generate_and_ingest_s": t_data, "effects": rows, "trials": trials, "out": str(root),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report))
        return
    print(f"world: {args.books} books × ~{args.tokens_per_book} tokens, "
          f"{manifest.settings['people_per_fact_book']} people per fact book, seed {args.seed}, vocab {args.vocab}; "
          f"{manifest.counts}; generate+ingest {t_data:.1f} s; torch threads {args.threads}")  # fmt: skip
    print(f"{'effect':20} {'n':>4} {'acc with':>9} {'without':>8} {'diff':>7} {'se':>6} {'z':>6}   "
          f"{'Δlogp (nats)':>12} {'se':>5}")  # fmt: skip
    for r in rows:
        z = "inf" if r["z"] is None else f"{r['z']:.1f}"
        print(f"{r['task'] + ' ' + r['books']:20} {r['n_items']:>4} {r['acc_with']:>9.3f} {r['acc_without']:>8.3f} "
              f"{r['diff']:>+7.3f} {r['se']:>6.3f} {z:>6}   {r['logprob_diff']:>+12.2f} {r['logprob_se']:>5.2f}")  # fmt: skip
    print("trials (train time, one per distinct book set):")
    for t in trials:
        print(f"  {t['recipe']}  {t['steps']:5d} steps  {t['tokens']:7d} tokens  {t['train_s']:6.1f} s  "
              f"{t['tokens_per_s']:6.0f} tokens/s")  # fmt: skip


if __name__ == "__main__":
    main()
