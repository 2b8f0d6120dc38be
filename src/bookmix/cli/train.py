"""`bookmix train` (one model on one recipe) and `bookmix bench` (throughput, FLOP/s and MFU of a preset)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bookmix.cli.app import app, console, print_json
from bookmix.cli.train_options import train_options
from bookmix.training.config import TrainConfig


@app.command("train")
@train_options
def train_cmd(
    library: Annotated[Path, typer.Option(help="Library folder (bookmix library ingest).")],
    recipe: Annotated[Path, typer.Option(help="Recipe file: YAML, JSON, or a .jsonl with --index / --recipe-id.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoint/, curve.jsonl, result.json. Re-run to resume.")],
    train: TrainConfig,
    model: Annotated[str, typer.Option(help="Model preset: nano, micro, mini, small, medium, large.")] = "nano",
    index: Annotated[int | None, typer.Option(help="0-based line of a .jsonl recipe file.")] = None,
    recipe_id: Annotated[str | None, typer.Option(help="Recipe id (or a unique prefix) in a .jsonl file.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Window length T (default: the model's block size).")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch (default: torch's choice).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Train one model on one recipe; killed and re-run with the same arguments, it resumes where it stopped."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from bookmix.recipes.recipe import select_recipe
    from bookmix.trial import train_recipe

    if threads:
        import torch

        torch.set_num_threads(threads)
    rec = select_recipe(recipe, index=index, recipe_id=recipe_id)
    if epochs is not None:
        rec = rec.with_changes(epochs=epochs)

    progress = Progress(TextColumn("[bold]train[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=console, transient=json_out)
    task = progress.add_task("train", total=None, info="")

    def on_log(record: dict) -> None:
        event = record.get("event")
        if event == "start":
            progress.start()
            progress.update(task, total=record["total_steps"], completed=record["step"], info=f"on {record['device']}")
        elif event == "oom_backoff":
            console.print(f"[yellow]out of memory at step {record['step']}: micro-batch → {record['micro_batch']}[/]")
        elif event == "diverged":
            console.print(f"[red]diverged at step {record['step']} (non-finite loss)[/]")
        elif event is None:
            held = f"  held-out {record['heldout_loss']:.3f}" if "heldout_loss" in record else ""
            progress.update(task, completed=record["step"],
                            info=f"loss {record['loss']:.3f}{held}  {record['tokens_per_s']:,.0f} tok/s")

    try:
        result = train_recipe(library, rec, model, train, out, seq_len=seq_len, on_log=on_log)
    finally:
        progress.stop()
    if json_out:
        print_json(result.to_dict())
        return
    held = f", held-out loss {result.heldout_loss:.4f}" if result.heldout_loss is not None else ""
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    colour = "green" if result.status == "completed" else "red"
    console.print(f"[{colour}]{result.status}[/]: {result.steps} steps, {result.tokens:,} tokens, final loss {loss}{held}, "
                  f"{result.tokens_per_s:,.0f} tokens/s → {out}")


@app.command("bench")
def bench_cmd(
    model: Annotated[str, typer.Option(help="Model preset to measure.")] = "nano",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    seconds: Annotated[float, typer.Option(help="Seconds of timed steps after warm-up.")] = 10.0,
    micro_batch: Annotated[int, typer.Option(help="Windows per step (reduced if the memory estimate says so).")] = 16,
    seq_len: Annotated[int | None, typer.Option(help="Window length T (default: the model's block size).")] = None,
    vocab: Annotated[int | None, typer.Option(help="Vocabulary size (default: the preset's).")] = None,
    dtype: Annotated[str, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), float32 or bfloat16.")] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model.")] = False,
    save: Annotated[bool, typer.Option(help="Save the result as a calibration for `bookmix estimate`.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Measure training tokens/s, achieved FLOP/s and MFU of a preset on this machine."""
    from bookmix.models.config import preset
    from bookmix.training.bench import bench, save_bench_calibration

    cfg = preset(model, vocab_size=vocab)
    with console.status(f"benchmarking {model} for {seconds:g} s ..."):
        result = bench(cfg, micro_batch=micro_batch, seq_len=seq_len, device=device, seconds=seconds, dtype=dtype,
                       compile=compile)
    out = result.to_dict()
    if save:
        out["calibration_path"] = save_bench_calibration(result)
    if json_out:
        print_json(out)
        return
    mfu = f"{result.mfu:.1%}" if result.mfu is not None else "n/a (unknown peak)"
    console.print(f"{model} ({result.params / 1e6:.1f}M params) on {result.device}, {result.dtype}, "
                  f"micro-batch {result.micro_batch} × {result.seq_len}: {result.tokens_per_s:,.0f} tokens/s, "
                  f"{result.flops_per_s / 1e12:.3f} TFLOP/s, MFU {mfu}; first step {result.first_step_s:.2f} s")
