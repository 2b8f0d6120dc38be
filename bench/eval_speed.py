"""Speed of the eval suite: the shipped suite (examples/ltm_eval_set.yaml) on a `nano` model, on CPU by default.

Builds (once, reused) a library from real books of ../shared/books (or a storyworld when they are absent), then
runs the whole suite twice: cold (items built and cached) and warm (items read from the library's cache). Prints
per-task seconds and items/s (BLiMP and RuBLiMP read from $BOOKMIX_EVALDATA, default ../shared/evaldata; the probe
shelf's probes are generated), and the batched scorer's speed-up over the naive baseline that scores one
(context, continuation) pair per forward pass, measured in the same process on the same pairs. One JSON object.

    .venv/bin/python bench/eval_speed.py [--books 12] [--vocab 16384] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
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
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if (ROOT.parent / "shared" / "evaldata").is_dir():
        os.environ.setdefault("BOOKMIX_EVALDATA", str(ROOT.parent / "shared" / "evaldata"))

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lib = build_library(work, args.books, args.vocab)
    library_s = time.perf_counter() - t0
    for f in (lib.path / "evals").glob("*.jsonl"):  # cold run: items built from scratch
        f.unlink()

    model = LM(preset("nano", vocab_size=lib.vocab_size)).to(args.device)
    suite = Suite.load(args.suite)
    runs = {}
    for label in ("cold", "warm"):
        r = evaluate(model, suite, lib, device=args.device, batch_size=args.batch_size)
        runs[label] = {"seconds": r.seconds, "items": r.items, "items_per_s": r.items_per_second,
                       "tasks": {k: {"items": v["items"], "seconds": round(v["seconds"], 3)} for k, v in r.tasks.items()}}
    scorer = Scorer.for_model(model, device=args.device, batch_size=args.batch_size)
    print(json.dumps({
        "device": args.device, "threads": torch.get_num_threads(), "preset": "nano", "vocab": lib.vocab_size,
        "library": {"path": str(lib.path), "holdout_books": len(lib.books(split="holdout")), "seconds": library_s},
        "suite": suite.name, **runs,
        "baseline": naive_vs_batched(model, scorer, lib, args.baseline_pairs, suite.seed),
    }, indent=1))


if __name__ == "__main__":
    main()
