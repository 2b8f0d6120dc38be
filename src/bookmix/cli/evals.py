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
    table = Table(title=f"{the_suite.name}: {checkpoint}", show_lines=False)
    for col in ("metric", "value", "± stderr", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, m in result.metrics.items():
        table.add_row(name, f"{m.value:.4f}", f"{m.stderr:.4f}", str(m.n))
    console.print(table)
    for name, info in result.tasks.items():
        if "skipped" in info:
            console.print(f"[yellow]skipped[/] {name}: {info['skipped']}", highlight=False)
    for s in result.samples:
        console.print(f"[bold]{s['task']}[/] {s['prompt']!r} → {s['completions'][0]!r}", highlight=False)
    o = result.objective
    console.print(f"objective ({o.direction}): [bold]{o.value:.4f}[/] ± {o.stderr:.4f}   "
                  f"{result.items} items in {result.seconds:.1f} s ({result.items_per_second:.0f} items/s)")
