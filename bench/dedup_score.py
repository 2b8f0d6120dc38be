"""Dedup and scoring throughput per core against the ingest's time per book, in one run, and a projection to
1,000,000 books x 250k tokens.

    PYTHONPATH=src .venv/bin/python bench/dedup_score.py [--books ../shared/books] [--n 40] [--variants 10]

One process each (one core): ingest N real books (spread over the catalog's sizes) plus made near-duplicates of some
(another preface, 2% of words dropped, OCR noise), then sign + cluster them (``library dedup``) and score them
(``library score``: text signals from 16 windows of 512 tokens). Prints seconds per book and per million tokens for
each pass, the ratio (dedup + scoring) / ingest per book (goal < 0.1), dedup recall and precision on the made
variants, and the projection: signing scales with a book's tokens (every token is hashed), scoring with the fixed
windows, the LSH pass with the number of books (measured here per book; datasketch's index in memory), ingest with
tokens. ``--reference CHECKPOINT_OR_HF`` also times the perplexity signal (its cost is the model's forward on
16 x block_size tokens a book: on a GPU see ``bookmix estimate``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

BOOKS = 1_000_000
TOKENS = 250_000
CORES = 16


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "books")
    ap.add_argument("--n", type=int, default=40, help="real books ingested")
    ap.add_argument("--variants", type=int, default=10, help="books given 3 made near-duplicates each")
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--reference", default=None, help="a bookmix checkpoint or HF model for the perplexity signal")
    ap.add_argument("--nodes", type=int, default=8, help="16-core nodes of the projected cluster")
    ap.add_argument(
        "--gpu", default="h100", help="device of the projected reference-model pass (bookmix estimate's table)"
    )
    ap.add_argument(
        "--ref-preset", default="small", help="size of the projected reference model (a preset, 50k vocabulary)"
    )
    args = ap.parse_args()
    if not (args.books / "catalog.csv").exists():
        sys.exit(f"no books at {args.books} (../shared/books beside the checkout)")

    from bookmix.library import Library, ingest
    from bookmix.library.clean import clean
    from bookmix.library.dedup import dedup
    from bookmix.library.score import score

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' builders (support/)
    from support.library import dedup_quality, drop_words, ocr_noise, with_preface

    with open(args.books / "catalog.csv", encoding="utf-8") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: int(r["bytes"]))
    step = max(1, len(rows) // args.n)
    chosen = rows[::step][: args.n]
    import gzip

    def text_of(r) -> str:
        with gzip.open(args.books / r["file"], "rt", encoding="utf-8") as fh:
            return clean(fh.read())[0]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vdir = tmp / "variants"
        vdir.mkdir()
        variants = {}
        preface = " ".join(text_of(chosen[0]).split(" ")[:2000])
        for k, r in enumerate(chosen[1 : 1 + args.variants]):
            text, stem = text_of(r), Path(r["file"]).name.split(".")[0]
            for name, v in (
                ("preface", with_preface(text, preface)),
                ("drop", drop_words(text, 0.02, k)),
                ("ocr", ocr_noise(text, 0.03, k)),
            ):
                variants[f"{stem}__{name}.txt"] = (r["file"], v)
                (vdir / f"{stem}__{name}.txt").write_text(v, encoding="utf-8")

        t0 = time.perf_counter()
        rep = ingest(
            [args.books / r["file"] for r in chosen] + [vdir], tmp / "lib", tokenizer=f"train:{args.vocab}", workers=1
        )
        t_ingest = time.perf_counter() - t0 - rep.tokenizer_seconds  # the tokenizer is trained once per library
        lib = Library.open(tmp / "lib")
        n, tokens = lib.count(), rep.tokens
        d = dedup(lib, workers=1)
        t_sign, t_cluster = d.sign_seconds, d.seconds - d.sign_seconds
        s = score(lib, workers=1)
        t_score = s.seconds
        recall, precision, found, truth = dedup_quality(lib, args.books, variants)
        margins = _margins(lib, args.books, variants)
        t_ref = None
        if args.reference:
            from bookmix.evals.reference import reference_factory

            factory, name = reference_factory(args.reference)
            t_ref = score(lib, reference=factory, reference_name=name, rescore=True).seconds - t_score

    per_book = {"ingest": t_ingest / n, "sign": t_sign / n, "cluster": t_cluster / n, "score": t_score / n}
    ratio = (per_book["sign"] + per_book["cluster"] + per_book["score"]) / per_book["ingest"]
    mtok = tokens / 1e6
    # projection: ingest and signing per token, scoring per book (fixed windows), clustering per book
    ingest_s = t_ingest / mtok * TOKENS / 1e6 * BOOKS
    sign_s = t_sign / mtok * TOKENS / 1e6 * BOOKS
    score_s = per_book["score"] * BOOKS
    cluster_s = per_book["cluster"] * BOOKS  # one process (the driver), whatever the core count
    out = {
        "books": n,
        "tokens": tokens,
        "mean_tokens_per_book": round(tokens / n),
        "seconds_per_book": {k: round(v, 4) for k, v in per_book.items()},
        "seconds_per_million_tokens": {"ingest": round(t_ingest / mtok, 2), "sign": round(t_sign / mtok, 3)},
        "dedup_plus_score_over_ingest": round(ratio, 4),
        "dedup_recall": round(recall, 3),
        "dedup_precision": round(precision, 3),
        "pairs_found_true": [found, truth],
        "jaccard_same_text_min_median": margins[0],
        "jaccard_different_books_max_p999": margins[1],
        "reference_seconds_per_book": None if t_ref is None else round(t_ref / n, 4),
        "projection_hours": {
            f"{CORES}_cores": {
                "ingest": round(ingest_s / CORES / 3600, 1),
                "dedup": round((sign_s / CORES + cluster_s) / 3600, 1),
                "score": round(score_s / CORES / 3600, 1),
            },
            f"{args.nodes}x{CORES}_cores": {
                "ingest": round(ingest_s / CORES / args.nodes / 3600, 1),
                "dedup": round((sign_s / CORES / args.nodes + cluster_s) / 3600, 1),
                "score": round(score_s / CORES / args.nodes / 3600, 1),
            },
        },
    }
    from bookmix.forecast.scoring import scoring_forecast
    from bookmix.models.config import preset

    ref = scoring_forecast(preset(args.ref_preset, vocab_size=50_257), args.gpu, BOOKS)
    out["projection_hours"]["reference_model"] = {
        "model": f"{args.ref_preset} (50k vocabulary)",
        "gpu": args.gpu,
        "tokens": ref.tokens,
        "hours_one_gpu": round(ref.seconds / 3600, 1),
        "throughput": ref.throughput.source,
    }
    print(json.dumps(out, indent=1))


def _margins(lib, books: Path, variants: dict) -> tuple[list[float], list[float]]:
    """Estimated Jaccard over every pair of books: (min, median) among a book and its made variants, (max, 99.9th
    percentile) among different books: how far the threshold (0.5) is from either side."""
    import numpy as np

    rows = lib.con.execute("SELECT b.id, b.source, m.sig FROM books b JOIN minhash m ON m.id = b.id").fetchall()
    work = [
        variants[Path(src).name][0] if Path(src).name in variants else str(Path(src).relative_to(books))
        for _, src, _ in rows
    ]
    sig = np.stack([np.frombuffer(s, np.uint32) for _, _, s in rows])
    sim = (sig[:, None, :] == sig[None, :, :]).mean(-1)
    same = np.array([[a == b for b in work] for a in work])
    upper = np.triu(np.ones_like(same), 1)
    inside, across = sim[same & upper], sim[~same & upper]
    return ([round(float(inside.min()), 3), round(float(np.median(inside)), 3)],
            [round(float(across.max()), 3), round(float(np.quantile(across, 0.999)), 3)])  # fmt: skip


if __name__ == "__main__":
    main()
