"""Signal-to-noise of every metric of the shipped suite, measured on a small campaign of real books.

The objective of ``examples/ltm_eval_set.yaml`` should be built from metrics that tell recipes apart: a metric whose
recipe spread is below its seed spread ranks seeds, not datasets. This bench runs a real campaign (``bookmix run``)
on a library of real English and Russian books from ../shared/books: R random recipes of K books, every recipe over
three seeds (``seeds.replicates: 1``), the probe shelf in every recipe, every model scored with the shipped suite.
Then it prints, per top-level metric and per objective term, the recipe spread (noise-corrected std of the recipe
means), the seed spread (pooled std between seeds of one recipe) and their ratio, as ``bookmix analyze`` reports them
(:func:`bookmix.analysis.terms.metric_snr`). One JSON object; the campaign folder is kept under --work, and a
re-run resumes it (a finished campaign costs nothing but the untrained models below).

Grammar beside it: BLiMP and RuBLiMP of the campaign's trained models (mean over trials) against untrained models of
the same shape (``--untrained`` init seeds), in standard errors from chance: the equal-length accuracy (the headline,
free of the untrained model's preference for shorter sentences) and the published full-sentence accuracy.

    PYTHONPATH=src .venv/bin/python bench/suite_snr.py [--recipes 8] [--books-per-set 6] [--tokens 196608]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# The shape of bench/snr.py (2 layers, d 64): a trial in seconds on a CPU; T 256 holds scene linking's 128-token
# context and 32-token passage whole.
SHAPE = {"n_layer": 2, "n_head": 2, "d_model": 64, "block_size": 256}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--en", type=int, default=16, help="English books (the first N by file name)")
    ap.add_argument("--ru", type=int, default=8, help="Russian books")
    ap.add_argument("--recipes", type=int, default=8)
    ap.add_argument("--books-per-set", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=196_608, help="trained tokens per trial (shelf included)")
    ap.add_argument("--shelf-share", type=float, default=0.1)
    ap.add_argument("--suite", type=Path, default=ROOT / "examples" / "ltm_eval_set.yaml")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bookmix-suite-snr"))
    ap.add_argument("--untrained", type=int, default=3, help="untrained models (init seeds) scored on the grammar")
    args = ap.parse_args()
    os.environ.setdefault("BOOKMIX_EVALDATA", str(SHARED / "evaldata"))

    from bookmix.analysis.noise import noise_report
    from bookmix.analysis.table import from_records
    from bookmix.analysis.terms import metric_snr
    from bookmix.campaign.store import load_campaign
    from bookmix.cli import main as cli
    from bookmix.evals import Suite
    from bookmix.library import ingest

    lib_dir = args.work / f"lib-{args.en}-{args.ru}"
    if not (lib_dir / "catalog.sqlite").exists():
        files = sorted((SHARED / "books" / "en").glob("*.txt.gz"))[: args.en]
        files += sorted((SHARED / "books" / "ru").glob("*.txt.gz"))[: args.ru]
        ingest([str(f) for f in files], lib_dir, tokenizer="train:4096", holdout=0.25, seed=0, workers=1)
    suite = Suite.load(args.suite)
    shelf = next((t.shelf for t in suite.tasks if t.type == "probe_shelf"), None)
    name = f"snr-{args.recipes}x{args.books_per_set}-{args.tokens}"
    pipeline = {
        "campaign": {"name": name, "out": str(args.work / name)},
        "library": {"path": str(lib_dir)},
        "search": {
            "designs": [{"design": "random", "n": args.recipes, "books_per_set": args.books_per_set, "seed": 0}],
            **({"probe_shelf": {**shelf.model_dump(mode="json"), "share": args.shelf_share}} if shelf else {}),
        },
        "model": {"preset": "nano", "overrides": SHAPE},
        "train": {"micro_batch": 16, "max_tokens": args.tokens, "checkpoint_seconds": 600},
        "seeds": {"seeds": [0], "replicates": 1.0, "replicate_seeds": 2},
        "eval": {"suite": str(args.suite.resolve())},
        "selection": {"top_k": 1},
        "analysis": {"enabled": False},
        "report": {"enabled": False},
        "executor": {"kind": "local", "workers": 1, "threads": 2, "trials_per_unit": 4},
    }
    args.work.mkdir(parents=True, exist_ok=True)
    spec = args.work / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    t0 = time.perf_counter()
    code = cli(["run", str(spec)])
    seconds = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"bookmix run {spec} failed with exit code {code}")
    records, _, lib = load_campaign(args.work / name)
    rows = metric_snr(noise_report(from_records(records)), dict(suite.objective.weights))
    print(json.dumps({
        "campaign": str(args.work / name), "trials": len(records), "recipes": args.recipes,
        "books_per_set": args.books_per_set, "tokens_per_trial": args.tokens, "shape": SHAPE,
        "run_seconds": round(seconds, 1), "metrics": rows, "grammar": grammar(records, lib, suite, args.untrained),
    }, indent=1))  # fmt: skip


def grammar(records: list[dict], lib, suite, n_untrained: int) -> dict:
    """Per benchmark and accuracy: trained (mean over the campaign's trials, with the mean of their standard errors)
    and untrained (each init seed), each in standard errors from chance (0.5)."""
    import numpy as np

    from bookmix.evals import Suite, evaluate
    from bookmix.models.config import preset
    from bookmix.models.model import LM

    tasks = [t.model_dump() for t in suite.tasks if t.type in ("blimp", "rublimp")]
    only = Suite.from_dict({"tasks": tasks, "objective": f"{tasks[0]['name']}/acc", "seed": suite.seed})
    cfg = preset("nano", vocab_size=lib.vocab_size, **SHAPE)
    untrained = []
    for seed in range(n_untrained):  # LM's weights are a function of its own seed argument alone
        untrained.append(evaluate(LM(cfg, seed=seed), only, lib).metrics)
    out: dict = {}
    for t in tasks:
        for acc in ("acc_same_length", "acc"):
            key = f"{t['name']}/{acc}"
            vals = np.array([r["metrics"][key] for r in records if key in r["metrics"]])
            se = float(np.mean([m[key].stderr for m in untrained]))  # the same items: the same error bar
            out[key] = {
                "trained": {"mean": float(vals.mean()), "min": float(vals.min()), "max": float(vals.max()),
                            "trials": len(vals), "se_from_chance": float((vals.mean() - 0.5) / se),
                            "worst_se_from_chance": float((vals.min() - 0.5) / se)},
                "untrained": [{"value": m[key].value, "stderr": m[key].stderr,
                               "se_from_chance": (m[key].value - 0.5) / m[key].stderr} for m in untrained],
            }  # fmt: skip
    return out


if __name__ == "__main__":
    main()
