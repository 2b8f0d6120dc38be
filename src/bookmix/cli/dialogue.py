"""`bookmix sft` (a dialogue layer on a trained model) and `bookmix chat` (talk to it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bookmix.cli.app import app, console, print_json
from bookmix.training.config import SFT_DEFAULTS


@app.command("sft")
def sft_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A trained run or trial folder (its checkpoint/ is read).")],
    data: Annotated[Path, typer.Option(help="Chat jsonl: one {\"messages\": [{\"role\", \"content\"}, ...]} a line.")],
    library: Annotated[Path | None, typer.Option(help="The library the model was trained on (default: the one its checkpoint names).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: CHECKPOINT/dialogue). Re-run to resume.")] = None,
    suite: Annotated[Path | None, typer.Option(help="Eval suite to run on the fine-tuned model.")] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the training conversations.")] = SFT_DEFAULTS.epochs,
    heldout: Annotated[float, typer.Option(help="Fraction of conversations held out for the chat loss.")] = SFT_DEFAULTS.heldout_fraction,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = SFT_DEFAULTS.train.lr,
    micro_batch: Annotated[int, typer.Option(help="Conversations per step.")] = SFT_DEFAULTS.train.micro_batch,
    seed: Annotated[int, typer.Option(help="Seed of the split and the order.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "auto",
    no_export: Annotated[bool, typer.Option("--no-export", help="Skip the Hugging Face export (hf/).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Fine-tune a trained model on chat data (loss on assistant turns only) and export it with its chat template."""
    from bookmix.training.config import SFTConfig, TrainConfig
    from bookmix.training.sft import resolve_library, sft

    base = SFT_DEFAULTS.train.model_dump()
    cfg = SFTConfig(epochs=epochs, heldout_fraction=heldout,
                    train=TrainConfig.from_dict({**base, "lr": lr, "micro_batch": micro_batch, "seed": seed, "device": device}))
    lib = resolve_library(checkpoint, library)
    run = checkpoint.parent if checkpoint.name == "checkpoint" else checkpoint  # never inside the checkpoint folder
    result = sft(checkpoint, data, lib, out or run / "dialogue", cfg, suite=suite, export=not no_export)
    if json_out:
        print_json(result.to_dict())
        return
    for r in result.rejected:
        console.print(f"[yellow]{data}:{r['line']}: rejected: {r['reason']}[/]")
    before, after = result.heldout_loss_before, result.heldout_loss_after
    held = f"held-out chat loss {before:.3f} → {after:.3f}" if before is not None and after is not None else "no held-out set"
    console.print(f"fine-tuned on {result.train_conversations} conversations in {result.steps} steps: {held}")
    if result.objective is not None:
        console.print(f"eval objective {result.objective:.4f}")
    console.print(f"→ {result.out_dir}")


@app.command("chat")
def chat_cmd(
    run: Annotated[Path, typer.Argument(help="A folder made by `bookmix sft`.")],
    prompt: Annotated[str | None, typer.Option(help="Ask once, print the answer and exit.")] = None,
    system: Annotated[str | None, typer.Option(help="A system message opening the conversation.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply in tokens.")] = 128,
    temperature: Annotated[float, typer.Option(help="Sampling temperature; 0 is greedy.")] = 0.7,
    top_k: Annotated[int, typer.Option(help="Sample among the k likeliest tokens (0: all).")] = 40,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N.")] = "cpu",
    json_out: Annotated[bool, typer.Option("--json", help="With --prompt: print {prompt, reply} as one JSON object.")] = False,
) -> None:
    """Talk to a dialogue fine-tuned model: one question with --prompt, else an interactive prompt (empty line or
    Ctrl-D ends it)."""
    from bookmix.models.chat import reply
    from bookmix.training.sft import load_chat_model

    model, tokenizer = load_chat_model(run, device)
    history = [{"role": "system", "content": system}] if system else []

    def answer(text: str, turn: int) -> str:
        history.append({"role": "user", "content": text})
        out = reply(model, tokenizer, history, model.cfg.block_size, max_new_tokens, temperature, top_k or None, seed + turn)
        history.append({"role": "assistant", "content": out or " "})
        return out

    if prompt is not None:
        out = answer(prompt, 0)
        if json_out:
            print_json({"prompt": prompt, "reply": out})
        else:
            typer.echo(out)
        return
    console.print("[dim]chat: an empty line or Ctrl-D ends it[/]")
    turn = 0
    while True:
        try:
            text = input("you> ")
        except EOFError:
            break
        if not text.strip():
            break
        typer.echo(f"model> {answer(text, turn)}")
        turn += 1
