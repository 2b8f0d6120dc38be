"""`bookmix library ingest | fetch | stats | list`: parse, call bookmix.library, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bookmix.cli.app import app, console, print_json

library_app = typer.Typer(help="Ingest books into a tokenized library, fetch books, inspect a library.", no_args_is_help=True)
app.add_typer(library_app, name="library")

LibraryOpt = Annotated[Path, typer.Option("--library", "-l", help="The library folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ExecutorOpt = Annotated[str, typer.Option(help="local (processes on this machine) or ray (a Ray cluster or a local instance).")]
AddressOpt = Annotated[str | None, typer.Option(help="Ray cluster address (auto or HOST:PORT); none starts a local instance.")]


def _bar(label: str, disable: bool) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=disable,
    )


@library_app.command("ingest")
def ingest_cmd(
    sources: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or hf:NAME[:SPLIT].")],
    library: LibraryOpt,
    tokenizer: Annotated[
        str | None, typer.Option(help="train:VOCAB to train a byte-level BPE (default train:16384), or a tokenizer.json path.")
    ] = None,
    holdout: Annotated[float | None, typer.Option(help="Fraction of books reserved for evaluation (seeded).")] = None,
    holdout_books: Annotated[Path | None, typer.Option(help="File listing book ids, file names or titles to hold out.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the holdout draw.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default min(4, CPUs)).")] = None,
    metadata: Annotated[list[Path] | None, typer.Option(help="Metadata sidecar (.csv/.jsonl); repeatable.")] = None,
    min_chars: Annotated[int, typer.Option(help="Reject books shorter than this after cleaning.")] = 1000,
    text_field: Annotated[str, typer.Option(help="hf: column holding the text.")] = "text",
    id_field: Annotated[str | None, typer.Option(help="hf: column holding a record id.")] = None,
    title_field: Annotated[str | None, typer.Option(help="hf: column holding the title.")] = None,
    author_field: Annotated[str | None, typer.Option(help="hf: column holding the author.")] = None,
    lang_field: Annotated[str | None, typer.Option(help="hf: column holding the language.")] = None,
    year_field: Annotated[str | None, typer.Option(help="hf: column holding the year.")] = None,
    subjects_field: Annotated[str | None, typer.Option(help="hf: column holding subjects (a list, or '|'-separated).")] = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Clean, deduplicate and tokenize books into LIBRARY (resumable: re-run the same command after a kill)."""
    from bookmix.library import Library, ingest
    from bookmix.library.sources import HFFields

    fields = HFFields(text_field, id_field, title_field, author_field, lang_field, year_field, subjects_field)
    with Progress(
        TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=json_out,
    ) as bar:
        task = bar.add_task("ingest", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        report = ingest(
            sources, library, tokenizer=tokenizer, holdout=holdout, holdout_books=holdout_books, seed=seed,
            workers=workers, metadata=metadata or [], min_chars=min_chars, hf_fields=fields, progress=progress,
            executor=executor, address=address,
        )
    stats = Library.open(library).stats()
    if json_out:
        print_json({**stats, "run": {k: v for k, v in report.to_dict().items() if k != "rejections"}})
        return
    for r in report.rejections[:20]:
        console.print(f"[yellow]rejected[/] {escape(r['source'])}: {escape(r['reason'])}", highlight=False)
    more = f" (first 20 shown; all in {library / 'rejected.jsonl'})" if report.rejected > 20 else ""
    console.print(
        f"added {report.added} books ({report.tokens:,} tokens) in {report.seconds:.1f}s; "
        f"{report.duplicates} duplicates, {report.skipped} already done, "
        f"[{'yellow' if report.rejected else 'green'}]{report.rejected} rejected[/]{more}. "
        f"Library: {stats['books']} books, {stats['tokens']:,} tokens, {stats['holdout_books']} held out.",
        highlight=False,
    )


@library_app.command("stats")
def stats_cmd(library: LibraryOpt, json_out: JsonOpt = False) -> None:
    """Books, tokens, rejections, holdout and vocabulary of a library."""
    from bookmix.library import Library

    stats = Library.open(library).stats()
    if json_out:
        print_json(stats)
        return
    table = Table(title=str(library), show_header=False)
    for key, value in stats.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)


@library_app.command("list")
def list_cmd(
    library: LibraryOpt,
    where: Annotated[str | None, typer.Option(help="SQL expression over catalog columns, e.g. \"lang = 'ru' AND tokens > 1e5\".")] = None,
    split: Annotated[str | None, typer.Option(help="train or holdout.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many books.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List books (id, title, author, lang, year, tokens, split)."""
    from dataclasses import fields

    from bookmix.library import Book, Library

    lib = Library.open(library)
    books = lib.books(where=where, split=split, limit=limit)
    if json_out:
        names = [f.name for f in fields(Book)]  # shallow: asdict's deep copies cost more than the query at 10k books
        print_json({"count": len(books), "books": [{n: getattr(b, n) for n in names} for b in books]})
        return
    table = Table("id", "title", "author", "lang", "year", "tokens", "split")
    for b in books:
        table.add_row(b.id, escape(b.title[:48]), escape(b.author[:32]), b.lang, str(b.year or ""), f"{b.tokens:,}", b.split)
    console.print(table)
    console.print(f"{len(books)} books", highlight=False)


@library_app.command("fetch")
def fetch_cmd(
    site: Annotated[str, typer.Argument(help="Where to fetch from: gutenberg.")],
    out: Annotated[Path, typer.Option(help="Folder for the downloaded texts.")],
    ids: Annotated[list[int] | None, typer.Option(help="Project Gutenberg book ids.")] = None,
    top: Annotated[int | None, typer.Option(help="The N most downloaded books (from the site's top list).")] = None,
    mirror: Annotated[str, typer.Option(help="Base URL of the site or a mirror with the same layout.")] = "https://www.gutenberg.org",
    delay: Annotated[float, typer.Option(help="Seconds between requests (be polite to volunteers' servers).")] = 2.0,
    retries: Annotated[int, typer.Option(help="Attempts per file on network errors and 5xx answers.")] = 4,
    json_out: JsonOpt = False,
) -> None:
    """Download Project Gutenberg plain texts (resumable: finished files are skipped, partial ones continued)."""
    from bookmix.library.fetch import fetch_gutenberg

    if site != "gutenberg":
        from bookmix.errors import BookmixError

        raise BookmixError(f"fetch {site}: unknown site (supported: gutenberg)")
    result = fetch_gutenberg(out, ids=ids, top=top, mirror=mirror, delay=delay, retries=retries, log=None if json_out else console.print)
    if json_out:
        print_json(result.to_dict())
        return
    console.print(
        f"fetched {len(result.fetched)}, already there {len(result.skipped)}, failed {len(result.failed)} → {out}",
        highlight=False,
    )
    for book_id, reason in result.failed.items():
        console.print(f"[yellow]failed[/] {book_id}: {escape(reason)}", highlight=False)


@library_app.command("dedup")
def dedup_cmd(
    library: LibraryOpt,
    threshold: Annotated[float | None, typer.Option(help="Estimated Jaccard of token 5-gram sets at which two books are near-duplicates (default 0.5).")] = None,
    workers: Annotated[int, typer.Option(help="Processes (local) or CPUs of a local Ray instance.")] = 1,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Find near-duplicate books (MinHash/LSH): mark each cluster's copies with dup_of = its canonical book (the one
    with the most characters). Nothing is deleted; designs leave marked books out unless include_duplicates is set.
    Resumable: signatures already in the catalog are reused."""
    from bookmix.library import Library
    from bookmix.library.dedup import dedup

    lib = Library.open(library)
    with _bar("sign", json_out) as bar:
        task = bar.add_task("sign", total=None)
        given = {"threshold": threshold} if threshold is not None else {}  # else the API's default
        report = dedup(lib, **given, workers=workers, executor=executor, address=address,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    if json_out:
        print_json({**report.to_dict(), "clusters_list": report.clusters_list})
        return
    console.print(
        f"{report.books} books ({report.signed} signed now): {report.clusters} clusters of near-duplicates, "
        f"{report.duplicates} books marked dup_of their canonical book, in {report.seconds:.1f}s",
        highlight=False,
    )


@library_app.command("score")
def score_cmd(
    library: LibraryOpt,
    model: Annotated[str | None, typer.Option(help="Reference model for q_ppl/q_bpb: a bookmix checkpoint folder or a Hugging Face causal LM (folder or hub name).")] = None,
    rescore: Annotated[bool, typer.Option(help="Clear the signals and score every book again (e.g. another --model).")] = False,
    windows: Annotated[int | None, typer.Option(help="Windows per book, evenly spread from its first token to its last (default 16).")] = None,
    window_tokens: Annotated[int | None, typer.Option(help="Tokens per window for the text signals (default 256).")] = None,
    where: Annotated[str | None, typer.Option(help="Only books matching this SQL expression.")] = None,
    device: Annotated[str | None, typer.Option(help="Device of the reference model (default: cuda when present).")] = None,
    workers: Annotated[int, typer.Option(help="Processes (local) or CPUs of a local Ray instance.")] = 1,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Per-book quality signals (q_ocr, q_repeat, q_lang, q_read; q_ppl and q_bpb with --model) from windows spread
    over each whole book, as catalog columns. Resumable: books already scored are skipped."""
    from bookmix.library import Library
    from bookmix.library.score import score

    factory, name = None, None
    if model is not None:
        from bookmix.evals.reference import reference_factory

        factory, name = reference_factory(model, device)
    lib = Library.open(library)
    with _bar("score", json_out) as bar:
        task = bar.add_task("score", total=None)
        given = {k: v for k, v in (("windows", windows), ("window_tokens", window_tokens)) if v is not None}
        report = score(lib, reference=factory, reference_name=name, rescore=rescore, **given,
                       where=where, workers=workers, executor=executor, address=address,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))  # fmt: skip
    if json_out:
        print_json(report.to_dict())
        return
    console.print(f"scored {report.scored} books ({report.books - report.scored} already were) in {report.seconds:.1f}s", highlight=False)


@library_app.command("select")
def select_cmd(
    library: LibraryOpt,
    top: Annotated[int, typer.Option(help="How many books.")],
    by: Annotated[str, typer.Option(help="Score expression over catalog columns, higher = better, e.g. \"-q_bpb - 5 * q_ocr\".")],
    where: Annotated[str | None, typer.Option(help="SQL expression restricting the candidates.")] = None,
    split: Annotated[str, typer.Option(help="train or holdout.")] = "train",
    include_duplicates: Annotated[bool, typer.Option(help="Also consider books marked as near-duplicates.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write the chosen ids here, one a line (atomic).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """The best N books by a score expression (ties by id: the same catalog always gives the same books)."""
    from bookmix.library import Library
    from bookmix.library.select import select_top
    from bookmix.utils.io import atomic_write_text

    sel = select_top(Library.open(library), top, by, where=where, split=split, include_duplicates=include_duplicates)
    if out is not None:
        atomic_write_text(out, "".join(f"{i}\n" for i in sel.ids))
    if json_out:
        print_json(sel.to_dict())
        return
    table = Table("rank", "id", "score")
    for k, (i, v) in enumerate(zip(sel.ids, sel.scores, strict=True)):
        table.add_row(str(k + 1), i, f"{v:.4g}")
    console.print(table)
    console.print(f"{len(sel.ids)} of {sel.candidates} candidates ({sel.unscored} without a score left out)", highlight=False)


@library_app.command("learn-weights")
def learn_weights_cmd(
    campaign: Annotated[Path, typer.Argument(help="A campaign folder with completed search trials.")],
    signals: Annotated[list[str] | None, typer.Option("--signal", help="A per-book column (repeatable; default: every q_* column).")] = None,
    library: Annotated[Path | None, typer.Option("--library", "-l", help="The library, when the campaign's has moved.")] = None,
    min_z: Annotated[float, typer.Option(help="Keep signals whose |weight| is at least this many standard errors in the expression.")] = 2.0,
    json_out: JsonOpt = False,
) -> None:
    """Which per-book signals predict a better model in this campaign's trials: weights, their standard errors, the
    leave-one-out R², and the score expression for `library select --by`."""
    from bookmix.analysis.book_quality import weights_from_records
    from bookmix.campaign.store import load_campaign
    from bookmix.errors import BookmixError

    records, _, lib = load_campaign(campaign, library)
    if lib is None:
        raise BookmixError(f"{campaign}: the campaign's library is not where it was; pass --library")
    w = weights_from_records(records, lib, signals)
    expr = w.expression(min_z)
    if json_out:
        print_json({**w.to_dict(), "expression": expr})
        return
    table = Table("signal", "weight", "stderr")
    for s, v, e in zip(w.signals, w.weights, w.stderr, strict=True):
        table.add_row(s, f"{v:+.4g}", f"{e:.2g}")
    console.print(table)
    note = "" if w.loo_r2 > 0 else " (≤ 0: these signals do not predict the objective here)"
    console.print(f"{w.n_trials} trials, leave-one-out R² {w.loo_r2:.2f}{note}", highlight=False)
    console.print(f"--by \"{escape(expr)}\"", highlight=False)
