"""`bookmix eval CHECKPOINT --library DIR --suite SUITE [--json]`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bookmix.cli.app import app, console, print_json


@app.command("eval")
def eval_command(
    checkpoint: Path = typer.Argument(..., help="A training run folder (or its checkpoint/ folder)."),
    library: Path = typer.Option(..., "--library", help="The library whose held-out books the items come from."),
    suite: Path = typer.Option(..., "--suite", help="Eval suite YAML (e.g. examples/ltm_eval_set.yaml)."),
    device: str = typer.Option("auto", help="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1', ..."),
    batch_size: int = typer.Option(32, min=1, help="Sequences per forward pass."),
    out: Path | None = typer.Option(None, "--out", help="Also write the result as JSON here (atomically)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Rebuild items instead of reading LIBRARY/evals/."),
    breakdowns: bool = typer.Option(False, "--breakdowns", help="Also list per-group metrics (name@key=value)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout."),
) -> None:
    """Score a trained model on an eval suite: every metric with its standard error, and the objective."""
    from bookmix.evals import Suite, evaluate
    from bookmix.library import Library
    from bookmix.training.checkpoint import load_model
    from bookmix.training.device import resolve_device

    the_suite = Suite.load(suite)  # fail on a bad suite before loading anything heavy
    lib = Library.open(library)
    dev = resolve_device(device)
    model, _, _ = load_model(checkpoint, dev)

    def progress(task: str, i: int, n: int) -> None:
        if not as_json:
            console.print(f"[dim]task {i + 1}/{n}: {task}[/]")

    result = evaluate(model, the_suite, lib, device=dev, batch_size=batch_size, cache=not no_cache,
                      checkpoint=checkpoint, progress=progress)
    if out is not None:
        result.save(out)
    if as_json:
        print_json(result.to_dict())
        return
    tasks = Table(title=f"{the_suite.name}: items per task", show_lines=False)
    for col in ("task", "type", "items", "chance", "seconds"):
        tasks.add_column(col, justify="left" if col in ("task", "type") else "right")
    for name, info in result.tasks.items():
        chance = info.get("chance")
        tasks.add_row(name, str(info.get("type")), str(info.get("items")),
                      "" if chance is None else f"{chance:.3f}", f"{info.get('seconds') or 0:.1f}")
    console.print(tasks)
    table = Table(title=f"{the_suite.name}: {checkpoint}", show_lines=False)
    for col in ("metric", "value", "± stderr", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    hidden = 0
    for name, m in result.metrics.items():
        if "@" in name and not breakdowns:
            hidden += 1
            continue
        table.add_row(name, f"{m.value:.4f}", f"{m.stderr:.4f}", str(m.n))
    console.print(table)
    if hidden:
        console.print(f"[dim]{hidden} per-group metrics not shown (--breakdowns lists them; --json has all)[/]")
    for name, info in result.tasks.items():  # grammar: the length-unbiased accuracy is the headline
        same, pub = result.metrics.get(f"{name}/acc_same_length"), result.metrics.get(f"{name}/acc")
        if info.get("type") in ("blimp", "rublimp") and same is not None and pub is not None and same.stderr > 0:
            console.print(
                f"{name}: [bold]{same.value:.1%} ± {same.stderr:.1%}[/] on the {same.n} pairs of equal token length "
                f"({(same.value - 0.5) / same.stderr:+.1f} SE from chance); published full-sentence accuracy "
                f"{pub.value:.1%} (an untrained model gains there by preferring the shorter sentence)",
                highlight=False,
            )
    for name, info in result.tasks.items():
        if "skipped" in info:
            console.print(f"[yellow]skipped[/] {name}: {info['skipped']}", highlight=False)
    for s in result.samples:
        console.print(f"[bold]{s['task']}[/] {s['prompt']!r} → {s['completions'][0]!r}", highlight=False)
    o = result.objective
    console.print(f"objective ({o.direction}): [bold]{o.value:.4f}[/] ± {o.stderr:.4f}   "
                  f"{result.items} items in {result.seconds:.1f} s ({result.items_per_second:.0f} items/s)")


evals_app = typer.Typer(help="Eval data: download the published benchmarks the suite scores.", no_args_is_help=True)
app.add_typer(evals_app, name="evals")


@evals_app.command("fetch")
def fetch_command(
    name: str = typer.Argument(..., help="Which benchmark: blimp (English) or rublimp (Russian)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for the files (default: $BOOKMIX_EVALDATA/NAME, "
                                    "else ~/.cache/bookmix/evaldata/NAME — where tasks without a path look)."),
    paradigm: list[str] | None = typer.Option(None, "--paradigm", help="Only these paradigms (repeatable)."),
    base_url: str | None = typer.Option(None, "--base-url", help="A mirror of the official folder (same file names)."),
    delay: float = typer.Option(0.5, help="Seconds between requests."),
    retries: int = typer.Option(4, help="Attempts per file on network errors and 5xx answers."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object on stdout."),
) -> None:
    """Download BLiMP or RuBLiMP's official files (polite and resumable: finished files are skipped, partial ones
    continued). The data is not shipped with bookmix; its licence travels with its source (see --help of the task)."""
    from bookmix.errors import BookmixError
    from bookmix.evals.benchmarks import fetch_benchmark

    result = fetch_benchmark(name, out, paradigms=paradigm or None, base_url=base_url, delay=delay, retries=retries,
                             log=None if as_json else console.print)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(f"{name}: {len(result.fetched)} fetched, {len(result.skipped)} already there, "
                      f"{len(result.failed)} failed → {result.out}")
        for p, why in result.failed.items():
            console.print(f"[red]failed[/] {p}: {why}", highlight=False)
    if result.failed:
        raise BookmixError(f"evals fetch {name}: {len(result.failed)} file(s) failed; run the same command again to retry")
