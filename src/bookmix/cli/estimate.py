"""`bookmix estimate`: how long, how much memory and how many FLOPs, for 1, 10, 100, 1000 books, on a given GPU."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bookmix.cli.app import app, console, print_json
from bookmix.errors import BookmixError


def _book_counts(books: list[str] | None, extra: list[str]) -> list[int]:
    """`--books 1 10 100`, `--books 1 --books 10` and `--books 1,10,100` all mean the same."""
    raw = [part for item in [*(books or []), *extra] for part in str(item).split(",") if part.strip()]
    if extra and not books:
        raise BookmixError(f"unexpected argument(s) {' '.join(extra)}; book counts go after --books")
    counts = []
    for item in raw:
        try:
            counts.append(int(item))
        except ValueError:
            raise BookmixError(f"--books: expected whole numbers, got {item!r}") from None
    return counts


def _recipe_tokens(recipe: Path, library: Path | None, seq_len: int) -> tuple[int | None, int]:
    """(books, tokens) of a recipe's stream; its epochs are already in the stream."""
    if library is None:
        raise BookmixError("--recipe: needs --library DIR to count the recipe's tokens")
    from bookmix.library import Library
    from bookmix.recipes import Recipe

    r = Recipe.load(recipe)
    stream = r.stream(Library.open(library), seq_len)
    books = getattr(r, "books", None)
    return (len(books) if books is not None else None), int(stream.total_tokens)


@app.command(context_settings={"allow_extra_args": True})
def estimate(
    ctx: typer.Context,
    model: str = typer.Option(..., "--model", "-m", help="Model preset: nano, micro, mini, small, medium, large."),
    books: list[str] = typer.Option(None, "--books", help="Book counts, one row each: --books 1 10 100 1000."),
    tokens_per_book: int = typer.Option(None, "--tokens-per-book", help="Tokens in one book (e.g. 250000)."),
    pages: int = typer.Option(None, "--pages", help="Pages per book, instead of --tokens-per-book."),
    tokens_per_page: int = typer.Option(None, "--tokens-per-page", help="Tokens per page with --pages (default: 500)."),
    epochs: int = typer.Option(1, "--epochs", help="Passes over the data."),
    gpu: str = typer.Option(None, "--gpu", help="Device key (rtx-pro-6000, h100, cpu, ...) (default: this machine's)."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs a campaign's trials are spread over."),
    pack: int = typer.Option(1, "--pack", help="Models trained together in one process (small presets)."),
    trials: int = typer.Option(None, "--trials", help="Forecast a whole campaign of this many trials."),
    verify_trials: int = typer.Option(None, "--verify-trials", help="Verification trials with --trials (default: 10)."),
    recipe: Path = typer.Option(None, "--recipe", help="Forecast this recipe's stream (needs --library)."),
    library: Path = typer.Option(None, "--library", help="Library: its vocabulary, and the recipe's token counts."),
    vocab: int = typer.Option(None, "--vocab", help="Vocabulary size (default: the library's, else the preset's)."),
    micro_batch: int = typer.Option(None, "--micro-batch", help="Sequences per step (default: 16k tokens, if it fits)."),
    seq_len: int = typer.Option(None, "--seq-len", help="Context length (default: the preset's)."),
    dtype: str = typer.Option("bf16", "--dtype", help="bf16, fp16 (autocast) or fp32."),
    compile: bool = typer.Option(None, "--compile/--no-compile", help="torch.compile (default: the calibration's setting, else on for GPUs)."),
    startup_s: float = typer.Option(None, "--startup-s", help="Start-up seconds per process (default: 15 GPU, 3 CPU)."),
    compile_s: float = typer.Option(None, "--compile-s", help="torch.compile seconds (default: 20 + 3 per layer)."),
    use_calibration: bool = typer.Option(True, "--calibration/--no-calibration", help="Use `bookmix bench` figures."),
    pilot: Path = typer.Option(None, "--pilot", help="A finished campaign (or its findings.json): project its measured "
                               "agreement of effects onto --trials (the power planner)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """How long, how much memory and how many FLOPs training takes for 1, 10, 100, 1000 books on a GPU."""
    from bookmix.forecast import Overheads, detect_device, get_gpu, load_calibration
    from bookmix.forecast import estimate as forecast
    from bookmix.forecast import tokens_per_book as book_tokens
    from bookmix.forecast.units import human_bytes, human_count, human_seconds
    from bookmix.models.config import preset

    counts = _book_counts(books, list(ctx.args))
    if vocab is None and library is not None:
        from bookmix.library import Library

        vocab = Library.open(library).vocab_size
    cfg = preset(model, vocab_size=vocab)
    t = seq_len or cfg.block_size
    spec = get_gpu(gpu or detect_device())

    tokens = None
    per_book = 1
    if recipe is not None:
        n_books, n_tokens = _recipe_tokens(recipe, library, t)
        tokens, counts = [n_tokens], [n_books] if n_books else []
    else:
        if not counts:
            raise BookmixError("--books: give at least one book count (e.g. --books 1 10 100 1000), or --recipe")
        per_book = book_tokens(tokens_per_book, pages, tokens_per_page)

    # this preset's calibration, else the device's latest (rescaled by model size inside the forecast)
    calibration = (load_calibration(spec.key, cfg.name) or load_calibration(spec.key)) if use_calibration else None
    fc = forecast(
        cfg,
        books=counts,
        tokens_per_book=per_book,
        epochs=epochs,
        tokens=tokens,
        device=spec,
        gpus=gpus,
        pack=pack,
        trials=trials,
        verify_trials=verify_trials,
        calibration=calibration,
        micro_batch=micro_batch,
        seq_len=t,
        dtype=dtype,
        overheads=Overheads(startup_s=startup_s, compile=compile, compile_s=compile_s),
    )
    a = fc.assumptions
    if fc.max_micro_batch == 0:
        raise BookmixError(
            f"--model {model} does not fit: it needs {human_bytes(fc.memory.total_bytes)} at micro-batch 1 × {t} tokens, "
            f"but {spec.key} has {human_bytes(a['device']['memory_bytes'])}; choose a smaller preset or a bigger GPU"
        )
    if not fc.rows[0].fits:
        raise BookmixError(
            f"--micro-batch/--pack: {human_bytes(fc.rows[0].memory_bytes)} for {a['pack']} model(s) at micro-batch "
            f"{a['micro_batch']} does not fit in {human_bytes(a['device']['memory_bytes'])} on {spec.key}; "
            f"one model fits up to micro-batch {fc.max_micro_batch}"
        )
    power = None
    if pilot is not None:
        from bookmix.analysis.reliability import pilot_plan_for

        power = pilot_plan_for(pilot, trials, counts, library)
    if as_json:
        print_json({**fc.to_dict(), **({"power": power} if power else {})})
        return

    table = Table(title=f"{cfg.name} ({human_count(cfg.total_params)} params, T={t}) on {spec.name}")
    for col in ("books", "tokens", "FLOPs", "compute", "overheads", "total", "memory", "kWh"):
        table.add_column(col, justify="right")
    if trials:
        table.add_column(f"campaign ({trials} trials)", justify="right")
    for r in fc.rows:
        cells = [
            "-" if r.books is None else str(r.books),
            human_count(r.tokens),
            f"{r.flops:.1e}".replace("e+", "e"),
            human_seconds(r.compute_s),
            human_seconds(r.seconds - r.compute_s),
            human_seconds(r.seconds),
            human_bytes(r.memory_bytes),
            "-" if r.energy_kwh is None else f"{r.energy_kwh:.2g}",
        ]
        if trials:
            cells.append(human_seconds(r.campaign_seconds or 0.0))
        table.add_row(*cells)
    console.print(table)
    m, o = fc.memory, a["overheads"]
    console.print(
        f"FLOPs/token {a['flops_per_token']:.3g} = {a['flops_formula']}\n"
        f"throughput {human_count(a['tokens_per_s'])} tokens/s = {a['flops_per_s'] / 1e12:.3g} TFLOP/s, "
        f"MFU {a['mfu']:.1%} from the {a['mfu_source']}: {a['throughput_source']}\n"
        f"peak {a['device']['peak_flops'] / 1e12:.4g} TFLOP/s ({a['device']['source']})\n"
        f"memory at micro-batch {m.micro_batch}: weights {human_bytes(m.weights)}, grads {human_bytes(m.grads)}, "
        f"optimizer {human_bytes(m.optimizer)}, activations {human_bytes(m.activations)}, output layer {human_bytes(m.logits)}, "
        f"overhead {human_bytes(m.overhead)}; largest micro-batch that fits: {fc.max_micro_batch}\n"
        f"overheads per trial: start-up {o['startup_s']:.0f} s, compile {o['compile_s']:.0f} s, "
        f"evaluation {o['eval_s']:.1f} s ({o['evals']} × {human_count(o['eval_tokens'])} tokens), "
        f"checkpoints {o['checkpoint_s_each']:.1f} s each ({human_bytes(o['checkpoint_bytes'])}; {o['checkpoints']})",
        highlight=False,
    )
    if trials:
        console.print(
            f"campaign: {trials} trials + {a['verify_trials']} verification, pack {a['pack']} "
            f"(speed-up {a['pack_speedup']:.2f}: {a['pack_speedup_source']}), {a['gpus']} GPU(s), "
            f"analysis {a['analysis_s']:.0f} s",
            highlight=False,
        )
    if power:
        console.print(power["sentence"], highlight=False)
