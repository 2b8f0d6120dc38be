"""Ingest: sources → a library (tokenizer, token store, catalog), resumable at any point.

The order of durable steps is what makes kill -9 safe:

1. the tokenizer is trained (or copied) and saved atomically, then recorded in the catalog, before any book;
2. worker processes read, clean and encode books and hand back token arrays;
3. the driver appends tokens to the current shard, fsyncs it, and only then commits the catalog rows (books and
   the sources they came from) in one transaction;
4. on start, shards are cut back to the end of the last committed book and committed sources are skipped.

Dedup is by content: a book's id is the hash of its cleaned text, so the same text under another name adds nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bookmix.errors import BookmixError
from bookmix.library import catalog, columns
from bookmix.library import tokenizer as toks
from bookmix.library.book import Book
from bookmix.library.clean import clean
from bookmix.library.parallel import run_units
from bookmix.library.process import Processed, init_worker, process
from bookmix.library.readers import Rejected, kind_of, read
from bookmix.library.sidecar import load_sidecars
from bookmix.library.sources import HFFields, Job, expand_files, file_jobs, hf_jobs, hf_sources
from bookmix.library.store import DEFAULT_SHARD_BYTES, ShardWriter, token_dtype
from bookmix.utils.io import atomic_open

DEFAULT_MIN_CHARS = 1000  # shorter than half a page of prose: a stub, a table of contents, or a failed extraction
DEFAULT_SAMPLE_BYTES = 16 << 20  # BPE merges settle after a few MB; 16 MB spread over books trains in seconds
SAMPLE_MAX_DOCS = 2000  # books the tokenizer sample is spread over (evenly spaced through the sources)
COMMIT_EVERY_S = 2.0  # commit (fsync + one transaction) at most this often, so a million small books stay fast
REJECTED_NAME = "rejected.jsonl"


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class IngestReport:
    library: str
    added: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0  # sources a previous run already finished
    tokens: int = 0
    chars: int = 0
    bytes: int = 0
    seconds: float = 0.0
    tokenizer_seconds: float = 0.0
    rejections: list[dict[str, str]] = field(default_factory=list)  # this run's: {"source", "reason"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest(
    sources: Sequence[str | os.PathLike],
    library: str | os.PathLike,
    *,
    tokenizer: str | None = None,
    holdout: float | None = None,
    holdout_books: str | os.PathLike | None = None,
    seed: int = 0,
    workers: int | None = None,
    metadata: Sequence[str | os.PathLike] = (),
    min_chars: int = DEFAULT_MIN_CHARS,
    hf_fields: HFFields | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    sample_bytes: int = DEFAULT_SAMPLE_BYTES,
    commit_seconds: float = COMMIT_EVERY_S,
    progress: Callable[[int, int | None], None] | None = None,
    executor: str = "local",
    address: str | None = None,
) -> IngestReport:
    """Ingest ``sources`` (files, folders, ``hf:NAME[:SPLIT]``) into the library folder ``library``.

    Re-running the same call after a crash or a kill finishes the work; re-running it after success adds nothing.
    ``executor="ray"`` reads and encodes books as Ray tasks (``address``: a cluster, else a local instance with
    ``workers`` CPUs) while this process stays the one writer; results are taken in source order, so the catalog and
    the token store come out the same as from a one-process ingest. Raises BookmixError when the library ends up with no book at all.
    """
    t0 = time.perf_counter()
    root = Path(library)
    if not sources:
        raise BookmixError("ingest: give at least one SRC (file, folder or hf:NAME)")
    if holdout is not None and not 0.0 <= holdout < 1.0:
        raise BookmixError(f"--holdout: must be in [0, 1), got {holdout}")
    if min_chars < 1:
        raise BookmixError(f"--min-chars: must be ≥ 1, got {min_chars}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise BookmixError(f"--workers: must be ≥ 1, got {workers}")
    files = expand_files(list(sources))
    hf_specs = hf_sources(list(sources))
    sidecar = load_sidecars([Path(m) for m in metadata])
    fields = hf_fields or HFFields()
    if not files and not hf_specs:
        raise BookmixError(f"{', '.join(map(str, sources))}: no ingestible files found ({', '.join(_suffixes())})")
    held_names = _read_holdout_file(Path(holdout_books)) if holdout_books else set()

    root.mkdir(parents=True, exist_ok=True)
    report = IngestReport(library=str(root))
    with _lock(root):
        con = catalog.connect(root / catalog.CATALOG_NAME, create=True)
        try:
            t_tok = time.perf_counter()
            meta = _ensure_tokenizer(con, root, tokenizer, files, hf_specs, fields, sample_bytes, min_chars)
            report.tokenizer_seconds = time.perf_counter() - t_tok
            fraction = _ensure_holdout(con, holdout, seed)
            seed = int(catalog.get_meta(con)["holdout_seed"])
            if held_names:
                _mark_holdout(con, held_names)

            writer = ShardWriter(root, token_dtype(meta["vocab_size"]), meta["eob_id"], shard_bytes)
            writer.recover(_committed_ends(con))
            jobs = _pending(con, _all_jobs(files, sidecar, hf_specs, fields), report)
            total = len(files) if not hf_specs else None
            split_of = _splitter(fraction, seed, held_names)
            driver = _Driver(con, writer, split_of, report, commit_seconds)
            done = report.skipped
            for result in _run(jobs, root, meta["vocab_size"], min_chars, workers, executor, address):
                driver.add(result)
                done += 1
                if progress is not None:
                    progress(done, total)
            driver.commit()
            writer.close()
            if report.added:
                catalog.analyze(con)
                columns.warm(con, root)
            _write_rejected(con, root)
            books = con.execute("SELECT COUNT(*) FROM books").fetchone()[0]
        finally:
            con.close()
    report.seconds = time.perf_counter() - t0
    if books == 0:
        why = "; ".join(f"{r['source']}: {r['reason']}" for r in report.rejections[:3])
        raise BookmixError(f"nothing ingested into {root}: {report.rejected} source(s) rejected ({why}); see {root / REJECTED_NAME}")
    return report


# -- the run: in-process for one worker, a process pool with a bounded queue for more -------------------------------
def _run(
    jobs: Iterator[Job], root: Path, vocab_size: int, min_chars: int, workers: int, executor: str, address: str | None
) -> Iterator[Processed]:
    """Processed jobs: in this process (one local worker), from a process pool (as they finish) or from Ray tasks (in
    job order, so a cluster ingest lays out the catalog and the token store exactly as a one-process ingest)."""
    args = (str(root / toks.TOKENIZER_NAME), vocab_size, min_chars)
    one = executor == "local" and workers == 1  # one process: let the Rust tokenizer use its thread pool
    init = partial(init_worker, *args, not one)
    for _, result in run_units(process, jobs, executor=executor, workers=workers, address=address, ordered=executor == "ray", init=init):
        yield result


class _Driver:
    """The single writer: appends tokens, batches catalog rows, commits after an fsync of the shard."""

    def __init__(self, con, writer: ShardWriter, split_of, report: IngestReport, commit_seconds: float) -> None:
        self.con, self.writer, self.split_of, self.report = con, writer, split_of, report
        self.commit_seconds = commit_seconds
        self.books: list[tuple] = []
        self.sources: list[tuple] = []
        self.batch_ids: set[str] = set()
        self.last_commit = time.monotonic()

    def add(self, r: Processed) -> None:
        if r.reason is not None:
            self.sources.append((r.key, "rejected", None, r.reason))
            self.report.rejected += 1
            self.report.rejections.append({"source": r.source, "reason": r.reason})
        elif r.id in self.batch_ids or self.con.execute("SELECT 1 FROM books WHERE id = ?", (r.id,)).fetchone():
            self.sources.append((r.key, "duplicate", r.id, None))
            self.report.duplicates += 1
        else:
            shard, offset = self.writer.append(r.tokens)
            m = r.meta
            book = Book(
                id=r.id,
                title=str(m.get("title", "")),
                author=str(m.get("author", "")),
                lang=str(m.get("lang", "")),
                year=m.get("year"),
                subjects=list(m.get("subjects", [])),
                source=r.source,
                sha256=r.sha256,
                chars=r.chars,
                tokens=len(r.tokens),
                shard=shard,
                offset=offset,
                split=self.split_of(r.id, r),
                features=r.features,
                extra=m.get("extra", {}),
            )
            self.books.append(catalog.book_row(book))
            self.sources.append((r.key, "book", r.id, None))
            self.batch_ids.add(r.id)
            self.report.added += 1
            self.report.tokens += book.tokens
            self.report.chars += book.chars
        if time.monotonic() - self.last_commit >= self.commit_seconds:
            self.commit()

    def commit(self) -> None:
        if not self.sources:
            return
        self.writer.sync()  # tokens durable before the rows that point at them
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        try:
            con.executemany(catalog.INSERT_BOOK, self.books)
            con.executemany("INSERT OR REPLACE INTO sources(key, status, book_id, reason) VALUES(?, ?, ?, ?)", self.sources)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.books, self.sources, self.batch_ids = [], [], set()
        self.last_commit = time.monotonic()


# -- jobs -----------------------------------------------------------------------------------------------------------
def _all_jobs(files: list[Path], sidecar, hf_specs: list[str], fields: HFFields) -> Iterator[Job]:
    yield from file_jobs(files, sidecar)
    for spec in hf_specs:
        yield from hf_jobs(spec, fields)


def _pending(con, jobs: Iterable[Job], report: IngestReport) -> Iterator[Job]:
    """Jobs whose source no committed run has finished (one indexed lookup each: no set of a million keys)."""
    for job in jobs:
        if con.execute("SELECT 1 FROM sources WHERE key = ?", (job.key,)).fetchone():
            report.skipped += 1
        else:
            yield job


def _committed_ends(con) -> dict[int, int]:
    """Shard → end of its last committed book, end-of-book token included."""
    rows = con.execute("SELECT shard, MAX(offset + tokens + 1) FROM books GROUP BY shard").fetchall()
    return {int(s): int(e) for s, e in rows}


# -- tokenizer ------------------------------------------------------------------------------------------------------
def _ensure_tokenizer(con, root: Path, spec: str | None, files, hf_specs, fields, sample_bytes: int, min_chars: int) -> dict:
    meta = catalog.get_meta(con)
    if spec is None:  # no choice made: keep the library's tokenizer, or train the default one
        if "vocab_size" in meta:
            return meta
        spec = f"train:{toks.DEFAULT_VOCAB}"
    kind, value = toks.parse_spec(spec)
    path = root / toks.TOKENIZER_NAME
    if "vocab_size" in meta:  # an existing library keeps its tokenizer; a different one would mix id spaces
        # A small corpus trains fewer tokens than asked: compare with what was asked, so the same command re-runs.
        asked = int(meta.get("requested_vocab", meta["vocab_size"]))
        if kind == "train" and value not in (asked, meta["vocab_size"]):
            raise BookmixError(f"--tokenizer {spec}: this library already uses a {meta['vocab_size']}-token vocabulary")
        if kind == "path" and toks.fingerprint(toks.load(value)) != meta["tokenizer_fingerprint"]:
            raise BookmixError(f"--tokenizer {value}: differs from the tokenizer this library was built with")
        return meta
    if kind == "path":
        tok = toks.load(value)
    elif path.exists() and toks.load(path).get_vocab_size() == value:
        tok = toks.load(path)  # trained by a run killed before it was recorded: keep it
    else:
        texts = _tokenizer_sample(files, hf_specs, fields, sample_bytes, min_chars)
        if not texts:
            shown = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
            raise BookmixError(
                f"nothing ingested: no source has text to train the tokenizer on ({shown}: empty, binary, "
                f"undecodable or shorter than {min_chars} chars)"
            )
        tok = toks.train_bpe(texts, value)
    toks.save(tok, path)
    meta = {
        "vocab_size": tok.get_vocab_size(),
        "eob_id": tok.token_to_id(toks.EOB_TOKEN),
        "token_dtype": token_dtype(tok.get_vocab_size()).name,
        "tokenizer_fingerprint": toks.fingerprint(tok),
        "format": 1,
    }
    if kind == "train":
        meta["requested_vocab"] = value
    catalog.set_meta(con, **meta)
    return catalog.get_meta(con)


def _tokenizer_sample(files: list[Path], hf_specs, fields, sample_bytes: int, min_chars: int) -> list[str]:
    """About ``sample_bytes`` of cleaned text spread evenly over up to SAMPLE_MAX_DOCS books (each script gets its
    share, so a minority language still gets merges)."""
    texts: list[str] = []
    step = max(1, len(files) // SAMPLE_MAX_DOCS)
    chosen = files[::step][:SAMPLE_MAX_DOCS]
    n_docs = len(chosen) + (SAMPLE_MAX_DOCS // 4 if hf_specs else 0)
    per_doc = max(4096, sample_bytes // max(n_docs, 1))
    for path in chosen:
        try:
            raw = _read_prefix(path, per_doc + 32_768)  # + room for a Gutenberg header
        except Rejected:
            continue
        text, _ = clean(raw)
        if len(text) >= min_chars:
            texts.append(text[:per_doc])
    for spec in hf_specs:
        for i, job in enumerate(hf_jobs(spec, fields)):
            if i >= SAMPLE_MAX_DOCS // 4:
                break
            if job.text and len(job.text) >= min_chars:
                texts.append(clean(job.text[: per_doc + 32_768])[0][:per_doc])
    return texts


def _read_prefix(path: Path, nbytes: int) -> str:
    """The first ``nbytes`` of a text file's content (whole document for epub/fb2, which need parsing)."""
    kind = kind_of(path)
    if kind in (".txt", ".txt.gz"):
        import gzip
        import zlib

        try:
            opener = gzip.open if kind == ".txt.gz" else open
            with opener(path, "rb") as fh:
                data = fh.read(nbytes)
        except (OSError, EOFError, zlib.error) as exc:
            raise Rejected(str(exc)) from exc
        if not data.strip() or b"\x00" in data[:65536]:
            raise Rejected("no text")
        return data.decode("utf-8-sig", errors="ignore")  # a sample may cut a character in two: drop it
    return read(path).text


# -- holdout --------------------------------------------------------------------------------------------------------
def _ensure_holdout(con, holdout: float | None, seed: int) -> float:
    meta = catalog.get_meta(con)
    if "holdout" in meta:
        if holdout is not None and abs(holdout - meta["holdout"]) > 1e-12:
            raise BookmixError(
                f"--holdout {holdout}: this library was built with --holdout {meta['holdout']} "
                "(a split must not change under existing books)"
            )
        return float(meta["holdout"])
    catalog.set_meta(con, holdout=float(holdout or 0.0), holdout_seed=int(seed))
    return float(holdout or 0.0)


def _splitter(fraction: float, seed: int, held_names: set[str]) -> Callable[[str, Processed], str]:
    def split_of(book_id: str, r: Processed) -> str:
        if held_names and _names_of(book_id, r.source, str(r.meta.get("title", ""))) & held_names:
            return "holdout"
        # Seeded per-book draw: the same book lands in the same split whatever order or run it is ingested in.
        u = int(hashlib.sha256(f"{seed}:{book_id}".encode()).hexdigest()[:16], 16) / 2**64
        return "holdout" if u < fraction else "train"

    return split_of


def _names_of(book_id: str, source: str, title: str) -> set[str]:
    return {book_id, source, Path(source).name, title}


def _read_holdout_file(path: Path) -> set[str]:
    """One book per line: an id, a file name or path as ingested, or an exact title; '#' starts a comment."""
    if not path.is_file():
        raise BookmixError(f"--holdout-books {path}: no such file")
    names = {line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()}
    return {n for n in names if n}


def _mark_holdout(con, names: set[str]) -> None:
    rows = con.execute("SELECT id, source, title FROM books WHERE split != 'holdout'").fetchall()
    ids = [(i,) for i, s, t in rows if _names_of(i, s, t) & names]
    if ids:
        con.execute("BEGIN IMMEDIATE")
        con.executemany("UPDATE books SET split = 'holdout' WHERE id = ?", ids)
        con.execute("COMMIT")


# -- rejected.jsonl and the writer lock ----------------------------------------------------------------------------
def _write_rejected(con, root: Path) -> None:
    """Rewrite rejected.jsonl from the catalog (atomic): the file always matches what the catalog recorded."""
    with atomic_open(root / REJECTED_NAME) as fh:
        for key, reason in con.execute("SELECT key, reason FROM sources WHERE status = 'rejected' ORDER BY key"):
            fh.write(json.dumps({"source": key, "reason": reason}, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def _lock(root: Path):
    fh = open(root / ".ingest.lock", "a+")  # noqa: SIM115 - held for the whole ingest
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BookmixError(f"{root}: another ingest is writing this library right now") from None
        yield
    finally:
        fh.close()  # closing releases the lock; so does the process dying


def _suffixes() -> list[str]:
    from bookmix.library.readers import SUFFIXES

    return list(SUFFIXES)
