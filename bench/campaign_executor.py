"""What the local executor's crash isolation costs: N tiny trials run in-process (the baseline, in this process
after a warm-up trial), then one worker subprocess per trial (pack 1, the default), then all in one worker (pack N).

    .venv/bin/python bench/campaign_executor.py [--trials 6] [--tokens 6144]

Prints seconds per trial and the ratios against the in-process baseline. Everything else (library, recipes,
model, eval suite) is identical across the three runs; each run trains into its own fresh folder.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import yaml


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=8 * 64 * 12, help="training tokens per trial")
    args = ap.parse_args()

    from bookmix.campaign.executors.local import LocalExecutor
    from bookmix.campaign.plan import plan_search
    from bookmix.campaign.store import Store
    from bookmix.campaign.worker import run_unit
    from bookmix.config import parse_pipeline
    from bookmix.library import Library, ingest
    from bookmix.recipes.designs import make_design
    from bookmix.storyworld import generate

    root = Path(tempfile.mkdtemp(prefix="bench_campaign_"))
    generate(root / "world", books=12, seed=3, tokens_per_book=1500)
    ingest([root / "world" / "books"], root / "lib", tokenizer="train:512", holdout_books=root / "world" / "holdout.txt",
           metadata=[root / "world" / "metadata.csv"], workers=1)  # fmt: skip
    lib = Library.open(root / "lib")
    recipes = [r.to_dict() for r in make_design("random", lib, n=args.trials, seed=0, books_per_set=3)]
    suite = {
        "name": "bench",
        "bootstrap": 20,
        "tasks": [{"name": "heldout", "type": "heldout_loss", "max_books": 2, "tokens_per_book": 512, "by": []}],
        "objective": {"metric": "heldout/loss", "direction": "minimize"},
    }
    log = logging.getLogger("bench")

    def config(name: str, pack: int):
        data = {
            "campaign": {"name": name, "out": str(root / name)},
            "library": {"path": str(root / "lib")},
            "search": {"designs": [{"design": "random", "n": 1, "books_per_set": 1}]},
            "model": {"preset": "nano", "overrides": {"n_layer": 1, "n_head": 2, "d_model": 32, "block_size": 64}},
            "train": {"micro_batch": 8, "lr": 0.003, "warmup": 2, "max_tokens": args.tokens},
            "seeds": {"seeds": [0], "replicates": 0.0},
            "eval": {"suite": suite},
            "executor": {"workers": 1, "threads": 2, "trials_per_unit": pack},
        }
        cfg = parse_pipeline(data)
        cfg.campaign_dir.mkdir(parents=True)
        (cfg.campaign_dir / "suite.yaml").write_text(yaml.safe_dump(suite))
        model = cfg.model.resolve(lib.vocab_size).to_dict()
        return cfg, plan_search(cfg, recipes, model, 0, root / "lib")

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    cfg, specs = config("warmup", 1)
    run_unit(specs[:1], "cpu")  # pay this process's one-off lazy imports (torch._dynamo on the first AdamW, evals)
    cfg, specs = config("inproc", 1)
    base = timed(lambda: run_unit(specs, "cpu"))

    results = {}
    for name, pack in (("pack1", 1), ("packN", args.trials)):
        cfg, specs = config(name, pack)
        store = Store(cfg.campaign_dir / "campaign.sqlite")
        store.add_trials(specs)
        ex = LocalExecutor(store, cfg.executor, log)
        results[name] = timed(lambda ex=ex, specs=specs: ex.run(specs))
        assert store.counts()["completed"] == len(specs), store.counts()
        store.close()

    n = args.trials
    print(f"{n} trials of {args.tokens} tokens (1-layer d32 model, CPU, 2 threads)")
    print(f"in-process baseline      {base:7.2f} s   {base / n:6.2f} s/trial   ratio 1.00")
    for name, label in (("pack1", "local executor, pack 1"), ("packN", f"local executor, pack {n}")):
        t = results[name]
        print(f"{label:<24} {t:7.2f} s   {t / n:6.2f} s/trial   ratio {t / base:4.2f}")
    print(f"worker start-up per subprocess ≈ {(results['pack1'] - results['packN']) / max(1, n - 1):.2f} s")


if __name__ == "__main__":
    main()
