"""Speed of the eval suite: the shipped suite (examples/ltm_eval_set.yaml) on a `nano` model, on CPU by default.

Builds (once, reused) a library from real books of ../shared/books (or a storyworld when they are absent), then
runs the whole suite twice: cold (items built and cached) and warm (items read from the library's cache). Prints
per-task seconds and items/s (BLiMP and RuBLiMP read from $BOOKMIX_EVALDATA, default ../shared/evaldata; the probe
shelf's probes are generated), and the batched scorer's speed-up over the naive baseline that scores one
(context, continuation) pair per forward pass, measured in the same process on the same pairs. One JSON object.

    .venv/bin/python bench/eval_speed.py [--books 12] [--vocab 16384] [--threads 2] [--device cpu]

Before/after in one command: ``--baseline-ref main`` exports that commit's ``src/`` (git archive, no checkout) and
times the warm suite with it and with this checkout's code, each in its own process, alternating ``--repeat`` times;
prints both medians and their ratio. ``--warm-only`` times one run on cached items (no cold run, no naive loop).
``--components``: the bootstrap (one metric at a time against one pass) and the minimal pairs' head positions (whole
sentences against from the first differing token), before and after in one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bookmix.evals import Suite, evaluate
from bookmix.evals.scoring import Scorer
from bookmix.library import Library, ingest
from bookmix.models.config import preset
from bookmix.models.model import LM

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "books"


def build_library(work: Path, n_books: int, vocab: int) -> Library:
    lib_dir = work / f"library-{n_books}-{vocab}"
    if not (lib_dir / "catalog.sqlite").exists():
        if (SHARED / "catalog.csv").exists():
            files = sorted((SHARED / "en").glob("*.txt.gz"))[: n_books - n_books // 4]
            files += sorted((SHARED / "ru").glob("*.txt.gz"))[: n_books // 4]
            sources = [str(f) for f in files]
        else:
            from bookmix.storyworld import generate

            sw = generate(work / "storyworld", books=n_books, seed=0, tokens_per_book=20000)
            sources = [str(sw.root / "books")]
        ingest(sources, lib_dir, tokenizer=f"train:{vocab}", holdout=0.5, seed=0, workers=1)
    return Library.open(lib_dir)


@torch.inference_mode()
def naive_scores(model: LM, ctxs: list[np.ndarray], conts: list[np.ndarray], device) -> np.ndarray:
    """The loop everyone writes first: one forward per pair, full logits, log-softmax, sum the continuation's."""
    out = []
    for ctx, cont in zip(ctxs, conts, strict=True):
        idx = torch.as_tensor(np.concatenate([ctx, cont]), device=device).unsqueeze(0)
        logits, _ = model(idx[:, :-1])
        lp = torch.log_softmax(logits.float(), dim=-1)[0, -len(cont) :].gather(1, idx[0, -len(cont) :, None])
        out.append(float(lp.sum()))
    return np.array(out)


def naive_vs_batched(model: LM, scorer: Scorer, lib: Library, n_pairs: int, seed: int) -> dict:
    """Scene-linking-shaped pairs (128-token context, 32-token passage): the naive loop, then the batched scorer."""
    rng = np.random.default_rng(seed)
    book_tokens = [np.asarray(lib.tokens(b.id), dtype=np.int64) for b in lib.books(split="holdout")]
    ctxs, conts = [], []
    for _ in range(n_pairs):
        toks = book_tokens[int(rng.integers(len(book_tokens)))]
        s = int(rng.integers(0, len(toks) - 160))
        ctxs.append(toks[s : s + 128])
        conts.append(toks[s + 128 : s + 160])
    t0 = time.perf_counter()
    a = naive_scores(model, ctxs, conts, scorer.device)
    naive = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = scorer.score(ctxs, conts).logprob
    batched = time.perf_counter() - t0
    return {"pairs": n_pairs, "naive_s": naive, "batched_s": batched, "speedup": naive / batched,
            "max_abs_diff": float(np.max(np.abs(a - b)))}


def compare(args: argparse.Namespace) -> None:
    """Warm suite seconds with ``args.baseline_ref``'s code and with this checkout's, alternating, one process each."""
    base = Path(tempfile.mkdtemp(prefix="bookmix-ref-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline_ref, "src"], check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
    common = [sys.executable, __file__, "--warm-only", "--books", str(args.books), "--vocab", str(args.vocab),
              "--threads", str(args.threads), "--device", args.device, "--batch-size", str(args.batch_size),
              "--work", args.work, "--suite", args.suite]  # fmt: skip

    def once(src: Path) -> dict:
        env = {**os.environ, "PYTHONPATH": str(src)}
        out = subprocess.run(common, env=env, check=True, capture_output=True, text=True).stdout
        return json.loads(out)["warm"]

    once(ROOT / "src")  # builds the library and caches the items: both sides then run warm
    runs: dict[str, list[dict]] = {args.baseline_ref: [], "checkout": []}
    for _ in range(args.repeat):
        runs[args.baseline_ref].append(once(base / "src"))
        runs["checkout"].append(once(ROOT / "src"))
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    tasks = {
        k: {t: statistics.median(r["tasks"][t]["seconds"] for r in v) for t in v[0]["tasks"]} for k, v in runs.items()
    }
    print(json.dumps({
        "threads": args.threads, "device": args.device, "repeat": args.repeat, "suite": args.suite,
        "seconds": med, "ratio": med[args.baseline_ref] / med["checkout"], "task_seconds": tasks,
    }, indent=1))  # fmt: skip


def components(lib: Library, seed: int) -> dict:
    """Before/after of the two cheap wins, in one process: every metric bootstrapped one by one against in one pass
    (BLiMP-sized: 2,010 items, 700 metrics mostly per-paradigm subsets, 1000 resamples), and the positions that reach
    the output head when minimal pairs are scored whole against from their first differing token."""
    from bookmix.evals.benchmarks import benchmark, default_dir, load_pairs
    from bookmix.evals.stats import bootstrap, bootstrap_all, resample_indices
    from bookmix.evals.tasks.base import MetricData

    rng = np.random.default_rng(seed)
    n = 2010
    metrics = {f"m{j}": MetricData.mean(rng.random(n), mask=None if j < 4 else rng.random(n) < 0.03) for j in range(700)}
    idx = resample_indices(n, 1000, [seed, 0])
    t0 = time.perf_counter()
    one = {k: bootstrap(v, idx) for k, v in metrics.items()}
    t1 = time.perf_counter()
    together = bootstrap_all(metrics, idx)
    t2 = time.perf_counter()
    diff = max(float(np.nanmax(np.abs(one[k].replicates - together[k].replicates))) for k in metrics)
    out = {"bootstrap": {"one_by_one_s": t1 - t0, "one_pass_s": t2 - t1, "ratio": (t1 - t0) / (t2 - t1),
                         "max_abs_diff": diff}}  # fmt: skip
    for name in ("blimp", "rublimp"):
        try:
            pairs = load_pairs(benchmark(name), default_dir(name), None, 30)
        except Exception as exc:  # the benchmark files are optional here
            out[name] = f"skipped: {exc}".splitlines()[0]
            continue
        enc = lib.encode([t for p in pairs for t in (p.good, p.bad)])
        whole = shared = 0
        for g, b in zip(enc[0::2], enc[1::2], strict=True):
            m = min(len(g), len(b))
            d = np.flatnonzero(np.asarray(g[:m]) != np.asarray(b[:m]))
            k = int(d[0]) if len(d) else m
            whole, shared = whole + len(g) + len(b), shared + len(g) + len(b) - 2 * k
        out[name] = {"pairs": len(pairs), "head_positions_whole": whole, "from_first_difference": shared,
                     "ratio": whole / shared}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--suite", default=str(ROOT / "examples" / "ltm_eval_set.yaml"))
    ap.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bookmix-bench-eval"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--baseline-pairs", type=int, default=64)
    ap.add_argument("--warm-only", action="store_true", help="one timed run on cached items; no naive baseline")
    ap.add_argument("--baseline-ref", help="also time this git commit's code (before/after ratio, one command)")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs per side with --baseline-ref")
    ap.add_argument("--components", action="store_true", help="only the bootstrap and pair-scoring before/after")
    args = ap.parse_args()
    if args.baseline_ref:
        compare(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if (ROOT.parent / "shared" / "evaldata").is_dir():
        os.environ.setdefault("BOOKMIX_EVALDATA", str(ROOT.parent / "shared" / "evaldata"))

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lib = build_library(work, args.books, args.vocab)
    library_s = time.perf_counter() - t0
    if args.components:
        print(json.dumps(components(lib, 0), indent=1))
        return
    if not args.warm_only:
        for f in (lib.path / "evals").glob("*.jsonl"):  # cold run: items built from scratch
            f.unlink()

    model = LM(preset("nano", vocab_size=lib.vocab_size)).to(args.device)
    suite = Suite.load(args.suite)
    runs = {}
    for label in ("warm",) if args.warm_only else ("cold", "warm"):
        r = evaluate(model, suite, lib, device=args.device, batch_size=args.batch_size)
        runs[label] = {"seconds": r.seconds, "items": r.items, "items_per_s": r.items_per_second,
                       "tasks": {k: {"items": v["items"], "seconds": round(v["seconds"], 3)} for k, v in r.tasks.items()}}
    if args.warm_only:
        print(json.dumps(runs))
        return
    scorer = Scorer.for_model(model, device=args.device, batch_size=args.batch_size)
    print(json.dumps({
        "device": args.device, "threads": torch.get_num_threads(), "preset": "nano", "vocab": lib.vocab_size,
        "library": {"path": str(lib.path), "holdout_books": len(lib.books(split="holdout")), "seconds": library_s},
        "suite": suite.name, **runs,
        "baseline": naive_vs_batched(model, scorer, lib, args.baseline_pairs, suite.seed),
    }, indent=1))


if __name__ == "__main__":
    main()
