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
    plan: Annotated[bool, typer.Option("--plan", help="Prepare the library, design round 0 and print the forecast by "
                                       "stage against campaign.time_budget, with the plan's warnings; train nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Start even when the forecast exceeds campaign.time_budget.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Run (or resume) a campaign: design → train → evaluate → analyse → report. Before training it forecasts the
    time of each stage; over `campaign.time_budget` it refuses to start unless --force."""
    from bookmix.campaign.runner import run_campaign
    from bookmix.config import load_pipeline

    cfg = load_pipeline(pipeline)
    if executor is not None and executor not in ("local", "ray"):
        from bookmix.errors import BookmixError

        raise BookmixError(f"--executor: choose local or ray, got {executor!r}")
    summary = run_campaign(cfg, executor=executor, address=address, retry_failed=retry_failed, show_progress=not json_out,
                           plan_only=plan, force=force)
    if json_out:
        print_json(summary.to_dict())
        return
    if plan:
        _print_plan(summary)
        return
    _print_summary(summary.to_dict())


def _print_plan(summary) -> None:
    from bookmix.campaign.forecast import format_plan

    p = summary.plan
    console.print(f"[bold]forecast[/] for {summary.campaign_dir} (the remaining work; library ready, round 0 designed):")
    for line in format_plan(p):
        console.print(line, highlight=False)
    if not p.calibrated:
        console.print("  [dim]uncalibrated: shipped defaults; `bookmix bench --model PRESET` measures this machine[/]")
    if p.warnings:
        for warning in p.warnings:
            console.print(f"[yellow]plan: {warning}[/]")
        if p.over_budget:
            console.print("[yellow]`bookmix run` will refuse to start; --force starts anyway[/]")
    else:
        console.print("[green]no warnings[/]")


def _print_summary(s: dict) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in s["trials"].items() if v)
    console.print(f"[bold]campaign[/] {s['campaign']}: {counts} ({s['seconds']:.0f} s)")
    for key in ("findings", "verification", "dialogue", "report"):
        if s.get(key):
            console.print(f"  {key}: {s[key]}")
    for note in s.get("notes", []):
        console.print(f"  [yellow]{note}[/]")
    rows = s.get("forecast_vs_actual") or []
    if rows:
        from bookmix.forecast.units import human_seconds

        console.print("  forecast vs actual: " + ", ".join(
            f"{r['stage']} {human_seconds(r['forecast_s'])} / "
            f"{human_seconds(r['actual_s']) if r['actual_s'] is not None else '-'}"
            + (f" (×{r['ratio']:.2f})" if r["ratio"] is not None else "") for r in rows), highlight=False)


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
        obj = st["objective"]
        table = Table("trial", "recipe", "seed", "stage", "objective", "± stderr",
                      title=f"best trials by {obj['name']} ({obj['direction']})")
        for b in st["best"]:
            err = "" if b["objective_stderr"] is None else f"{b['objective_stderr']:.4g}"
            table.add_row(b["id"], b["recipe_id"], str(b["seed"]), b["stage"], f"{b['objective']:.4g}", err)
        console.print(table)
    for f in st["failures"]:
        console.print(f"[red]{f['state']}[/] {f['id']}: {f['error']}")


@app.command()
def export(
    target: Annotated[str, typer.Argument(help="Campaign folder (results table), or `axolotl` / `hf` followed by what to export.")],
    trial: Annotated[str | None, typer.Argument(help="axolotl: a trial id. hf: a run or trial folder, a dialogue "
                                                 "(sft) folder, a campaign folder with --top K, or a trial id with --campaign.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv (results table).")] = "parquet",
    campaign: Annotated[Path | None, typer.Option(help="The campaign folder a trial id belongs to (axolotl: default .).")] = None,
    top: Annotated[int | None, typer.Option(help="hf from a campaign: export its K best trials that kept their weights.")] = None,
    library: Annotated[Path | None, typer.Option(help="hf: the library whose tokenizer to export (default: the run's own).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (table) or folder (axolotl, hf).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Export a campaign's results table (`bookmix export CAMPAIGN --format csv`), an Axolotl setup to retrain one
    trial's recipe (`bookmix export axolotl TRIAL --campaign CAMPAIGN`), or trained models as Hugging Face folders
    that transformers loads (`bookmix export hf RUN --out DIR`, `bookmix export hf CAMPAIGN --top 10 --out DIR`)."""
    from bookmix.campaign.export import export_axolotl, export_results
    from bookmix.errors import BookmixError

    if target == "hf":
        _export_hf(trial, campaign, top, library, out, json_out)
        return
    if target == "axolotl" and trial is not None:
        path = export_axolotl(campaign or Path("."), trial, out)
        result = {"axolotl": str(path), "config": str(path / "axolotl.yaml")}
    else:
        if trial is not None:
            raise BookmixError(f"export: unexpected argument {trial!r} (did you mean `bookmix export axolotl {trial}` "
                               f"or `bookmix export hf {trial}`?)")
        path = export_results(target, fmt, out)
        result = {"path": str(path), "format": fmt}
    if json_out:
        print_json(result)
    else:
        console.print(f"wrote {path}")


def _export_hf(source: str | None, campaign: Path | None, top: int | None, library: Path | None, out: Path | None,
               json_out: bool) -> None:
    from bookmix.campaign.export import HF_INDEX, export_hf_run, export_hf_top, export_hf_trial
    from bookmix.errors import BookmixError

    if source is None:
        raise BookmixError("export hf: say what to export: a run folder, a campaign folder with --top K, or a trial id "
                           "with --campaign CAMPAIGN")
    if out is None:
        raise BookmixError("export hf: --out DIR is required (the folder transformers will load)")
    if top is not None:
        if campaign is not None:
            raise BookmixError("export hf: --top reads the campaign given as the argument; drop --campaign")
        models = export_hf_top(source, top, out, library)
    elif campaign is not None:
        models = [export_hf_trial(campaign, source, out, library)]
    else:
        models = [export_hf_run(source, out, library)]
    if json_out:
        print_json({"models": [m.to_dict() for m in models], "index": str(out / HF_INDEX) if top is not None else None})
        return
    for m in models:
        rank = f"#{m.rank} " if m.rank else ""
        what = f"trial {m.trial_id}" if m.trial_id else m.source
        score = f" (objective {m.objective:.4g})" if m.objective is not None else ""
        console.print(f"{rank}{what}{score} [{m.kind}] → {m.out}")
    if top is not None and len(models) < top:
        console.print(f"[yellow]only {len(models)} of the top {top} trials still have their weights "
                      f"(selection.top_k keeps the others' metrics only); see {out / HF_INDEX}[/]")
    console.print("load with transformers: AutoModelForCausalLM.from_pretrained(DIR), AutoTokenizer.from_pretrained(DIR)")


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
