"""`bookmix train-pack`: one model per recipe of a recipe file, several models trained together on one device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bookmix.cli.app import app, console, print_json


@app.command("train-pack")
def train_pack_cmd(
    library: Annotated[Path, typer.Option(help="Library folder (bookmix library ingest).")],
    recipes: Annotated[Path, typer.Option(help="Recipes: a .jsonl (bookmix design), or one YAML/JSON recipe.")],
    out: Annotated[Path, typer.Option(help="Folder of run folders, one per recipe id. Re-run to resume.")],
    model: Annotated[str, typer.Option(help="Model preset: nano, micro, mini, ...")] = "nano",
    pack: Annotated[int | None, typer.Option(help="Models trained together (default: chosen from the memory estimate).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Stop each model after this many tokens.")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Window length T (default: the model's block size).")] = None,
    micro_batch: Annotated[int, typer.Option(help="Windows per forward pass, per model.")] = 16,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    schedule: Annotated[str, typer.Option(help="cosine, wsd or constant.")] = "cosine",
    seed: Annotated[int, typer.Option(help="Seed of the initialisation (every model, as `bookmix train` would).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), float32 or bfloat16.")] = "auto",
    eval_every: Annotated[int, typer.Option(help="Held-out loss every N steps (0: at the end only).")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps (0: by time only).")] = 0,
    log_every: Annotated[int, typer.Option(help="Steps between curve records.")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as one JSON object.")] = False,
) -> None:
    """Train one model per recipe, packed: each run folder is what `bookmix train` writes for that recipe."""
    from bookmix.recipes.recipe import load_recipes
    from bookmix.training.config import TrainConfig
    from bookmix.training.packed import train_recipes_packed

    tcfg = TrainConfig.from_dict({
        "micro_batch": micro_batch, "grad_accum": grad_accum, "lr": lr, "schedule": schedule, "max_tokens": max_tokens,
        "eval_every": eval_every, "log_every": log_every, "checkpoint_every": checkpoint_every, "seed": seed,
        "dtype": dtype, "device": device,
    })
    recs = load_recipes(recipes)
    sizes: list[int] = []

    def on_log(record: dict) -> None:
        if record.get("event") == "start":
            sizes.append(record["pack"])
            console.print(f"[bold]train[/] {record['recipe_id'][:12]} in a pack of {record['pack']} on {record['device']}"
                          f" from step {record['step']}/{record['total_steps']}")
        elif record.get("event") == "diverged":
            console.print(f"[red]{record['recipe_id'][:12]} diverged at step {record['step']} (non-finite loss)[/]")

    with console.status(f"training {len(recs)} models ..."):
        results = train_recipes_packed(library, recs, model, tcfg, out, pack=pack, seq_len=seq_len, device=device,
                                       on_log=on_log)
    rows = [{"recipe_id": r.id, "out": str(out / r.id), **res.to_dict()} for r, res in zip(recs, results, strict=True)]
    if json_out:
        print_json({"models": len(rows), "largest_pack": max(sizes, default=0), "results": rows})
        return
    for row in rows:
        loss = f"{row['final_loss']:.4f}" if row["final_loss"] is not None else "n/a"
        held = f", held-out {row['heldout_loss']:.4f}" if row["heldout_loss"] is not None else ""
        colour = "green" if row["status"] == "completed" else "red"
        console.print(f"[{colour}]{row['status']}[/] {row['recipe_id'][:12]}: {row['steps']} steps, loss {loss}{held}")
