"""`bookmix transfer CAMPAIGN`: do the finished campaign's findings hold for a larger model?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bookmix.cli.app import app, console, print_json


def _f(x: float | None, pct: bool = False) -> str:
    return "–" if x is None else (f"{x:.0%}" if pct else f"{x:.2f}")


def _ci(ci: list | None, pct: bool = False) -> str:
    return "" if not ci else f"[{_f(ci[0], pct)}, {_f(ci[1], pct)}]"


@app.command()
def transfer(
    campaign: Annotated[Path, typer.Argument(help="A finished campaign folder (holds campaign.sqlite).")],
    target: Annotated[
        str | None, typer.Option(help="Target preset (default: the pipeline's transfer.target, else small).")
    ] = None,
    recipes: Annotated[int | None, typer.Option(help="Recipes re-trained (default: transfer.recipes, 24).")] = None,
    seeds: Annotated[
        list[int] | None,
        typer.Option("--seed", help="A transfer seed; repeat for more (default: transfer.seeds, 0 and 1)."),
    ] = None,
    executor: Annotated[str | None, typer.Option(help="local or ray (default: the pipeline's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print transfer.json as one JSON object on stdout.")] = False,
) -> None:
    """Re-train the campaign's top, bottom and random recipes at a larger target and report whether the ranking,
    the proposal's advantage and the findings hold there (Spearman, decision accuracy, rank flips, a verdict)."""
    import json

    from bookmix.campaign.runner import run_transfer

    overrides: dict = {}
    if target is not None:
        overrides["target"] = {"preset": target}
    if recipes is not None:
        overrides["recipes"] = recipes
    if seeds:
        overrides["seeds"] = list(seeds)
    out = run_transfer(campaign, show_progress=not as_json, executor=executor, **overrides)
    data = json.loads(out.read_text(encoding="utf-8"))
    if as_json:
        print_json(data)
        return
    t = Table(title=f"Proxy → target ({data['target']['name']}) over {len(data['recipes'])} recipes")
    for col in ("proxy", "Spearman", "interval", "decision acc.", "interval", "flips", "verdict"):
        t.add_column(col)
    for name, p in data["proxies"].items():
        t.add_row(
            name,
            _f(p["spearman"]),
            _ci(p["spearman_ci"]),
            _f(p["accuracy"], True),
            _ci(p["accuracy_ci"], True),
            str(p["flips"]["n_flips"]),
            p["verdict"],
        )
    console.print(t)
    for s in data["summary"]:
        console.print(s)
    console.print(f"written to {out}")
