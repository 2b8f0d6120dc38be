"""Ingest speed on real books: end to end vs the bare tokenizer on the same cleaned texts with the same workers.

    .venv/bin/python bench/ingest.py [--books ../shared/books] [--workers 2] [--limit N]

Prints MB/s and tokens/s of `bookmix.library.ingest` (read gzip, clean, dedup, encode, features, write store and
catalog) and of the bare Rust tokenizer's batch encoding of the same cleaned texts (texts prepared beforehand, not
timed; RAYON_NUM_THREADS = workers; run once before the ingest and once after, and averaged, since the load of a
shared machine drifts), and their ratio (goal ≤ 1.3), in wall time and in CPU time (parent and workers apart). The
tokenizer is trained once first, timed apart. `--slow` also times the non-fast `encode_batch`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BARE = r"""
import json, sys, time
import numpy as np
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
texts = json.load(open(sys.argv[2], encoding="utf-8"))
out = {}
for name in sys.argv[3:]:
    fn = getattr(tok, name)
    t0 = time.perf_counter(); c0 = time.process_time(); n = 0
    for i in range(0, len(texts), 8):  # groups of 8 books: whole-library Encodings would not fit in memory
        for e in fn(texts[i:i + 8], add_special_tokens=False):
            n += len(np.asarray(e.ids, dtype=np.uint16))
    out[name] = (time.perf_counter() - t0, n, time.process_time() - c0)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "books")
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--vocab", type=int, default=16384)
    ap.add_argument("--limit", type=int, default=None, help="only the first N files")
    ap.add_argument("--slow", action="store_true", help="also time the bare tokenizer's encode_batch (non-fast)")
    args = ap.parse_args()

    from bookmix.library import ingest
    from bookmix.library.build import _tokenizer_sample
    from bookmix.library.clean import clean
    from bookmix.library.readers import read
    from bookmix.library.sources import HFFields, expand_files
    from bookmix.library.tokenizer import save, train_bpe

    files = expand_files([args.books])[: args.limit]
    raw_mb = sum(f.stat().st_size for f in files) / 1e6
    names = ["encode_batch_fast", *(["encode_batch"] if args.slow else [])]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        sample = _tokenizer_sample(files, [], HFFields(), 16 << 20, 1000)
        tok = train_bpe(sample, args.vocab)
        t_train = time.perf_counter() - t0
        save(tok, tmp / "tokenizer.json")
        texts = [clean(read(f).text)[0] for f in files]  # the bare runs' input, prepared untimed
        text_mb = sum(len(t.encode()) for t in texts) / 1e6
        (tmp / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        del texts
        env = {**os.environ, "RAYON_NUM_THREADS": str(args.workers), "TOKENIZERS_PARALLELISM": "true"}
        cmd = [sys.executable, "-c", _BARE, str(tmp / "tokenizer.json"), str(tmp / "texts.json"), *names]

        # bare, ingest, bare again: on a shared machine the load drifts, so the ingest is compared with the mean of
        # a bare run before it and one after it.
        before = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
        t0 = time.perf_counter()
        c0, p0 = _cpu(), _cpu(children=False)
        report = ingest(files, tmp / "lib", tokenizer=str(tmp / "tokenizer.json"), workers=args.workers,
                        metadata=[args.books / "catalog.csv", args.books / "metadata.csv"])
        t_e2e = time.perf_counter() - t0
        c_e2e, c_parent = _cpu() - c0, _cpu(children=False) - p0
        after = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)

    print(f"books: {len(files)} files, {raw_mb:.1f} MB on disk (gzip), {text_mb:.1f} MB cleaned text, workers={args.workers}")
    print(f"tokenizer training (vocab {args.vocab}, {sum(map(len, sample)) / 1e6:.1f} M chars sample): {t_train:.1f} s")
    print(f"ingest end to end: {report.added} books, {report.tokens:,} tokens, {report.rejected} rejected, "
          f"{report.duplicates} duplicates in {t_e2e:.1f} s = {text_mb / t_e2e:.2f} MB/s, {report.tokens / t_e2e:,.0f} tokens/s"
          f" (CPU {c_e2e:.1f} s: parent {c_parent:.1f} s + workers {c_e2e - c_parent:.1f} s)")
    for name in names:
        (s1, n, cpu1), (s2, _, cpu2) = before[name], after[name]
        secs, cpu = (s1 + s2) / 2, (cpu1 + cpu2) / 2
        print(f"bare {name} (RAYON_NUM_THREADS={args.workers}), before / after the ingest: {s1:.1f} / {s2:.1f} s, "
              f"CPU {cpu1:.1f} / {cpu2:.1f} s; mean {text_mb / secs:.2f} MB/s, {n / secs:,.0f} tokens/s; "
              f"ingest / bare: wall {t_e2e / secs:.2f}x, CPU {c_e2e / cpu:.2f}x")


def _cpu(children: bool = True) -> float:
    """CPU seconds of this process and (by default) its finished children (the ingest's worker processes)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + (kids.ru_utime + kids.ru_stime if children else 0.0)


if __name__ == "__main__":
    main()
