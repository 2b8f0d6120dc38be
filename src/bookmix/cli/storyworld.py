"""`bookmix storyworld generate` and `bookmix storyworld check`: parse, call bookmix.storyworld, print."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bookmix.cli.app import app, console, print_json

storyworld_app = typer.Typer(
    help="Synthetic books with planted, known signal (tests, the offline demo).", no_args_is_help=True
)
app.add_typer(storyworld_app, name="storyworld")


@storyworld_app.command("generate")
def generate_cmd(
    out: Path = typer.Option(..., "--out", help="New or empty folder to write the storyworld into."),
    books: int = typer.Option(20, "--books", help="Number of books, all kinds together."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same bytes."),
    tokens_per_book: int = typer.Option(
        8000, "--tokens-per-book", help="Approximate book length in tokens (~4 characters each)."
    ),
    mix: str | None = typer.Option(
        None, "--mix", help="Proportions of book kinds, e.g. fact=0.4,rule=0.15,story=0.25,noise=0.1,misleading=0.1"
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Write books, metadata.csv, holdout.txt, eval items, chat.jsonl and manifest.json into OUT."""
    from bookmix.storyworld import generate
    from bookmix.storyworld.settings import parse_mix

    manifest = generate(
        out, books=books, seed=seed, tokens_per_book=tokens_per_book, mix=parse_mix(mix) if mix else None
    )
    summary = {
        "out": str(out),
        "books": manifest.counts,
        "holdout": manifest.book_names(holdout=True),
        "groups": {name: g.items for name, g in manifest.groups.items()},
        "manifest": str(out / "manifest.json"),
    }
    if json_out:
        print_json(summary)
        return
    kinds = ", ".join(f"{n} {k}" for k, n in manifest.counts.items() if n)
    console.print(f"storyworld: {sum(manifest.counts.values())} books ({kinds}) in {out}")
    table = Table("group", "items", "helped by", "hurt by")
    for name, g in manifest.groups.items():
        table.add_row(name, str(g.items), _short(g.helps), _short(g.hurts))
    console.print(table)
    console.print(
        f"ingest with: bookmix library ingest {out / 'books'} --library LIB --metadata {out / 'metadata.csv'} --holdout-books {out / 'holdout.txt'}"
    )


@storyworld_app.command("check")
def check_cmd(
    folder: Path = typer.Argument(..., help="A storyworld folder (with manifest.json)."),
    task: list[str] = typer.Option(
        ["fact_recall"], "--task", help="Item task(s) to check: fact_recall, two_hop, scene_link, entity_recall."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Learnability: a word n-gram trained with vs without each task's helpful (and harmful) books."""
    from bookmix.storyworld import Manifest
    from bookmix.storyworld.learnability import ablation

    manifest = Manifest.load(folder)
    effects = []
    for t in task:
        for which in ("helps", "hurts"):
            if any(getattr(it, which) for it in manifest.items(t)):
                effects.append(ablation(manifest, t, which))
    if json_out:
        print_json(
            {"folder": str(folder), "scorer": "word 5-gram", "effects": [e.to_dict() for e in effects]}
        )  # null z: se = 0
        return
    table = Table("task", "books removed", "items", "acc with", "acc without", "difference ± se", "z")
    for e in effects:
        table.add_row(
            e.task,
            e.books,
            str(e.n_items),
            f"{e.acc_with:.3f}",
            f"{e.acc_without:.3f}",
            f"{e.diff:+.3f} ± {e.se:.3f}",
            f"{e.z:.1f}" if e.se > 0 else "exact",
        )
    console.print(table)


def _short(names: list[str], n: int = 3) -> str:
    return ", ".join(names[:n]) + (f" (+{len(names) - n})" if len(names) > n else "")
