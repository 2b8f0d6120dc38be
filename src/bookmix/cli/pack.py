"""`bookmix train-pack`: one model per recipe of a recipe file, several models trained together on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bookmix.cli.app import app, console, print_json
from bookmix.cli.train_options import train_options
from bookmix.training.config import TrainConfig


@app.command("train-pack")
@train_options
def train_pack_cmd(
    library: Annotated[Path, typer.Option(help="Library folder (bookmix library ingest).")],
    recipes: Annotated[Path, typer.Option(help="Recipes: a .jsonl (bookmix design), or one YAML/JSON recipe.")],
    out: Annotated[Path, typer.Option(help="Folder of run folders, one per recipe id. Re-run to resume.")],
    train: TrainConfig,
    model: Annotated[str, typer.Option(help="Model preset: nano, micro, mini, ...")] = "nano",
    pack: Annotated[int | None, typer.Option(help="Models trained together in one packed model (default: chosen from the memory estimate).")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Window length T (default: the model's block size).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
) -> None:
    """Train one model per recipe, packed: each run folder is what `bookmix train` writes for that recipe (every
    model starts from --seed, as `bookmix train` would)."""
    from bookmix.errors import BookmixError
    from bookmix.recipes.recipe import load_recipes
    from bookmix.trial import train_recipes_packed

    recs = load_recipes(recipes)
    if len({r.id for r in recs}) != len(recs):
        raise BookmixError(f"{recipes}: the same recipe is listed twice; each recipe trains once into its own folder")
    sizes: list[int] = []

    def on_log(record: dict) -> None:
        if record.get("event") == "start":
            sizes.append(record["pack"])
            console.print(f"[bold]train[/] {record['recipe_id'][:12]} in a pack of {record['pack']} on {record['device']}"
                          f" from step {record['step']}/{record['total_steps']}")
        elif record.get("event") == "diverged":
            console.print(f"[red]{record['recipe_id'][:12]} diverged at step {record['step']} (non-finite loss)[/]")

    with console.status(f"training {len(recs)} models ..."):
        results = train_recipes_packed(library, recs, model, train, [out / r.id for r in recs], pack=pack,
                                       seq_len=seq_len, device=train.device, on_log=on_log)
    rows = [{"recipe_id": r.id, "out": str(out / r.id), **res.to_dict()} for r, res in zip(recs, results, strict=True)]
    if json_out:
        print_json({"models": len(rows), "largest_pack": max(sizes, default=0), "results": rows})
        return
    for row in rows:
        loss = f"{row['final_loss']:.4f}" if row["final_loss"] is not None else "n/a"
        held = f", held-out {row['heldout_loss']:.4f}" if row["heldout_loss"] is not None else ""
        colour = "green" if row["status"] == "completed" else "red"
        console.print(f"[{colour}]{row['status']}[/] {row['recipe_id'][:12]}: {row['steps']} steps, loss {loss}{held}")
