"""`bookmix analyze CAMPAIGN [--json]`: what made models better, with intervals and validity next to each pattern."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bookmix.cli.app import app, console, print_json


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def _ci(ci: list) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


@app.command()
def analyze(
    campaign: Annotated[Path, typer.Argument(help="Campaign folder (holds campaign.sqlite).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as one JSON object on stdout.")] = False,
    top: Annotated[int, typer.Option(help="Books shown at each end of the ranking.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap, folds and proposal search.")] = 0,
) -> None:
    """Noise floor, book and factor effects with intervals, their cross-validated validity, and a proposal."""
    from bookmix.analysis import AnalysisConfig
    from bookmix.analysis import analyze as run_analysis
    from bookmix.campaign.store import load_campaign, objective_weights

    records, holdout, library = load_campaign(campaign)
    config = AnalysisConfig(seed=seed, top=top, objective_weights=objective_weights(campaign))
    with console.status(f"analysing {len(records)} trials"):
        findings = run_analysis(records, library, config, holdout=holdout or None)
    data = findings.to_dict()
    if as_json:
        print_json(data)
        return
    v = data["validity"]

    def validity(name: str) -> str:
        got = v.get(name) or {}
        return f"Spearman {_fmt(got.get('spearman'), 2)}, pairwise {_fmt(got.get('pairwise_accuracy'), 2)}"

    terms = Table(title="Noise floor per metric and objective term: recipe spread ÷ seed spread (paired seeds)")
    for col in ("metric", "objective weight", "recipe spread", "seed spread", "seeds' common", "ratio", "p"):
        terms.add_column(col)
    for r in data["terms"]:
        terms.add_row(r["metric"], _fmt(r["weight"], 3), _fmt(r["recipe_spread"]), _fmt(r["seed_spread"]),
                      _fmt(r["seed_common_spread"]), _fmt(r["ratio"], 3), _fmt(r["p_value"], 2))  # fmt: skip
    console.print(terms)
    for n in data["noise"].values():
        if n["below_noise"] is not False:
            console.print(f"[yellow]{n['sentence']}[/]")

    for title, rows in (("Top books", data["top_books"]), ("Bottom books", data["bottom_books"])):
        t = Table(title=f"{title} — datamodel validity: {validity('datamodel')}")
        for col in ("book", "title", "effect", f"{int(data['model']['level'] * 100)}% interval", "trials"):
            t.add_column(col)
        for b in rows:
            t.add_row(b["book"], b["title"][:40], _fmt(b["effect"]), _ci(b["ci"]), str(b["trials"]))
        console.print(t)

    f = Table(title=f"Factors, each adjusted for the others — validity: {validity('factors')}")
    for col in ("factor", "effect", "interval", "unit", "clear"):
        f.add_column(col)
    for row in data["factors"]:
        f.add_row(row["factor"], _fmt(row["effect"]), _ci(row["ci"]), row["unit"], "yes" if row["clear"] else "")
    console.print(f)
    if data["surrogate"].get("kind"):
        console.print(f"Surrogate ({data['surrogate']['kind']}): {validity('surrogate')}")
    rel = data.get("reliability") or {}
    if rel:
        t = Table(title="Would an independent rerun agree? (split-half agreement of effects, projected)")
        for col in ("level", "units", "split-half ρ", "rerun ρ", "placebo ρ", "trials for 0.7", "trials for 0.8"):
            t.add_column(col)
        for name, c in rel["candidates"].items():
            mark = " ◀" if name == rel["level"] else ""
            t.add_row(name + mark, str(c["units"]), _fmt(c["split_half"], 2), _fmt(c["rerun_agreement"], 2),
                      _fmt(c["placebo"], 2), str(c["trials_for"].get("0.7") or "–"),
                      str(c["trials_for"].get("0.8") or "–"))  # fmt: skip
        console.print(t)
        console.print(f"Effects read at the level of {rel['level']}: {rel['reason']}.")
    if data.get("groups"):
        g = Table(title=f"Kinds of book by {rel['level']}: effect of one more book of the kind")
        for col in ("group", "effect", "interval", "books", "trials"):
            g.add_column(col)
        for row in data["groups"]:
            g.add_row(row["group"], _fmt(row["effect"]), _ci(row["ci"]), str(row["books"]), str(row["trials"]))
        console.print(g)
    prop = data.get("proposal")
    if prop:
        r = prop["recipe"]
        console.print(
            f"Proposal {r['id']}: {len(r.get('books') or [])} books, order {r.get('order')}, "
            f"keep {r.get('sparsity', {}).get('keep')}, epochs {r.get('epochs')}; predicted {_fmt(prop['predicted'])} "
            f"vs best measured {_fmt(prop['best_observed'])}"
        )
    for line in data["summary"]:
        console.print(line)
