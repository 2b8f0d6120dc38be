"""`bookmix run`, `bookmix status`, `bookmix export`, `bookmix demo`: the campaign commands (parse, call, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bookmix.cli.app import app, console, print_json


@app.command()
def run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML (see examples/ltm_bruteforce_pipeline.yaml).")],
    executor: Annotated[str | None, typer.Option(help="local or ray (default: the YAML's executor.kind).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray address: auto, HOST:PORT or ray://HOST:PORT.")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed and diverged trials again.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Run (or resume) a campaign: design → train → evaluate → analyse → report."""
    from bookmix.campaign.runner import run_campaign
    from bookmix.config import load_pipeline

    cfg = load_pipeline(pipeline)
    if executor is not None and executor not in ("local", "ray"):
        from bookmix.errors import BookmixError

        raise BookmixError(f"--executor: choose local or ray, got {executor!r}")
    summary = run_campaign(cfg, executor=executor, address=address, retry_failed=retry_failed, show_progress=not json_out)
    if json_out:
        print_json(summary.to_dict())
        return
    _print_summary(summary.to_dict())


def _print_summary(s: dict) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in s["trials"].items() if v)
    console.print(f"[bold]campaign[/] {s['campaign']}: {counts} ({s['seconds']:.0f} s)")
    for key in ("findings", "verification", "dialogue", "report"):
        if s.get(key):
            console.print(f"  {key}: {s[key]}")
    for note in s.get("notes", []):
        console.print(f"  [yellow]{note}[/]")


@app.command()
def status(
    campaign: Annotated[Path, typer.Argument(help="Campaign folder.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Trial counts by state, disk use, the best trials and the failures of a campaign."""
    from bookmix.campaign.status import campaign_status
    from bookmix.forecast.units import human_bytes

    st = campaign_status(campaign)
    if json_out:
        print_json(st)
        return
    state = "running" if st["running"] else "not running"
    console.print(f"[bold]{st['campaign']}[/] ({state}), stages done: {', '.join(st['stages']) or 'none'}")
    console.print("trials: " + ", ".join(f"{k} {v}" for k, v in st["trials"].items()) + f" (total {st['total']})")
    d = st["disk"]
    console.print(f"disk: {human_bytes(d['total_bytes'])} ({human_bytes(d['trials_bytes'])} in trials, weights kept for {d['weights_kept']})")
    if st["best"]:
        table = Table("trial", "recipe", "seed", "stage", "objective", "± stderr", title="best trials")
        for b in st["best"]:
            err = "" if b["objective_stderr"] is None else f"{b['objective_stderr']:.4g}"
            table.add_row(b["id"], b["recipe_id"], str(b["seed"]), b["stage"], f"{b['objective']:.4g}", err)
        console.print(table)
    for f in st["failures"]:
        console.print(f"[red]{f['state']}[/] {f['id']}: {f['error']}")


@app.command()
def export(
    target: Annotated[str, typer.Argument(help="Campaign folder, or `axolotl` followed by a trial id.")],
    trial: Annotated[str | None, typer.Argument(help="With `axolotl`: the trial id (a unique prefix is enough).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv (results table).")] = "parquet",
    campaign: Annotated[Path | None, typer.Option(help="With `axolotl`: the campaign folder (default: .).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (table) or folder (axolotl).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Export a campaign's results table (`bookmix export CAMPAIGN --format csv`) or an Axolotl setup to retrain
    one trial's recipe (`bookmix export axolotl TRIAL --campaign CAMPAIGN`)."""
    from bookmix.campaign.export import export_axolotl, export_results
    from bookmix.errors import BookmixError

    if target == "axolotl" and trial is not None:
        path = export_axolotl(campaign or Path("."), trial, out)
        result = {"axolotl": str(path), "config": str(path / "axolotl.yaml")}
    else:
        if trial is not None:
            raise BookmixError(f"export: unexpected argument {trial!r} (did you mean `bookmix export axolotl {trial}`?)")
        path = export_results(target, fmt, out)
        result = {"path": str(path), "format": fmt}
    if json_out:
        print_json(result)
    else:
        console.print(f"wrote {path}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo campaign.")] = Path("demo-out"),
    small: Annotated[bool | None, typer.Option("--small/--big", help="CPU size or GPU size (default: by device).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Generate a storyworld library, run examples/demo.yaml on it (analysis, report) and say where the report is."""
    from bookmix.campaign.demo import run_demo

    summary = run_demo(out, small=small, show_progress=not json_out)
    if json_out:
        print_json(summary.to_dict())
        return
    _print_summary(summary.to_dict())
    if summary.report:
        console.print(f"[bold green]report:[/] {summary.report}")
    elif summary.findings:
        console.print(f"[bold green]findings:[/] {summary.findings}")
