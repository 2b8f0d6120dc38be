"""`bookmix design` and `bookmix recipe show | cluster`: parse, call bookmix.recipes, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bookmix.cli.app import app, console, print_json
from bookmix.errors import BookmixError

recipe_app = typer.Typer(
    help="Inspect recipes and their exact window order; cluster a library's books.", no_args_is_help=True
)
app.add_typer(recipe_app, name="recipe")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
# The default T matches the presets' most common block_size (nano/micro); pass the model's own T when it differs.
SeqLenOpt = Annotated[int, typer.Option("--seq-len", "-T", help="Tokens per window T (a window holds T+1).")]


def _params(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs (values read as YAML; dotted keys nest: recipe.grain=books) into a dict."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BookmixError(f"--param {pair!r}: expected KEY=VALUE")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


@app.command("design")
def design_cmd(
    library: Annotated[Path, typer.Option("--library", "-l", help="The library folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the recipes (.jsonl).")],
    design: Annotated[
        str | None,
        typer.Option(help="random | stratified | dirichlet | datamodels | factorial | latin_hypercube | list | mutate"),
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Recipes to make.")] = None,
    books_per_set: Annotated[int | None, typer.Option(help="Books per recipe (K).")] = None,
    token_budget: Annotated[int | None, typer.Option(help="Cap on each recipe's tokens.")] = None,
    by: Annotated[str | None, typer.Option(help="Catalog column to balance over (stratified, dirichlet).")] = None,
    where: Annotated[str | None, typer.Option(help="SQL over catalog columns restricting the pool.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: the same seed makes the same recipes.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML holding a design block (the pipeline's `design:`).")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Any other design field, KEY=VALUE (repeatable).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Make recipes with a design and write them to OUT, one per line (re-running rewrites the same file)."""
    from bookmix.library import Library
    from bookmix.recipes import parse_design, run_design, save_recipes
    from bookmix.utils.io import read_yaml

    block: dict[str, Any] = {}
    if config is not None:
        loaded = read_yaml(config, missing="no such design file") or {}
        if not isinstance(loaded, dict):
            raise BookmixError(f"{config}: must hold a design mapping (or a pipeline with a `design:` block)")
        block = dict(loaded["design"] if isinstance(loaded.get("design"), dict) else loaded)
    flags = {
        "design": design,
        "n": n,
        "books_per_set": books_per_set,
        "token_budget": token_budget,
        "by": by,
        "where": where,
        "seed": seed,
    }
    block.update({k: v for k, v in flags.items() if v is not None})
    block.update(_params(param or []))
    if "design" not in block:
        raise BookmixError("--design: which design (random, stratified, dirichlet, ...)?")
    cfg = parse_design(block)
    notes: list[str] = []  # e.g. the library was clustered first because the design balances over clusters
    recipes = run_design(cfg, Library.open(library), notes)
    save_recipes(out, recipes)
    if json_out:
        print_json({"out": str(out), "design": cfg.design, "n": len(recipes), "ids": [r.id for r in recipes],
                    "notes": notes})
        return
    for note in notes:
        console.print(f"[yellow]{note}[/]")
    console.print(f"{len(recipes)} recipes ({cfg.design}, seed {cfg.seed}) → {out}")


@recipe_app.command("show")
def show_cmd(
    recipe: Annotated[Path, typer.Argument(help="A recipe file (.yaml/.json) or a .jsonl of recipes.")],
    library: Annotated[
        Path | None, typer.Option("--library", "-l", help="Library: adds token and window counts.")
    ] = None,
    index: Annotated[int | None, typer.Option("--index", "-i", help="0-based line of a .jsonl.")] = None,
    recipe_id: Annotated[str | None, typer.Option("--id", help="Recipe id (or a unique prefix) in a .jsonl.")] = None,
    seq_len: SeqLenOpt = 256,
    windows: Annotated[bool, typer.Option("--windows", help="Export the full window order (needs --library).")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Window export: .npz (rebuildable) or .tsv.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a recipe: its canonical content and id, and with --library its exact token and window counts."""
    from bookmix.recipes import select_recipe

    r = select_recipe(recipe, index=index, recipe_id=recipe_id)
    info: dict[str, Any] = {"recipe": r.to_dict()}
    stream = None
    if library is not None:
        from bookmix.library import Library

        stream = r.stream(Library.open(library), seq_len)
        info["stream"] = {
            "seq_len": stream.seq_len,
            "n_windows": stream.n_windows,
            "total_tokens": stream.total_tokens,
            "epoch_windows": stream.plan.epoch_windows,
            "phase_windows": stream.plan.phase_windows,
        }
    elif windows:
        raise BookmixError("--windows: needs --library (the window order depends on the books' lengths)")
    if windows and stream is not None:
        if out is not None:
            stream.export(out)
            info["windows_out"] = str(out)
        elif json_out:
            info["windows"] = stream.window_index()
        else:
            for i, (src, off) in enumerate(stream.window_index().tolist()):
                print(f"{i}\t{src}\t{off}")
    if json_out:
        print_json(info)
        return
    if windows and out is None:
        return
    _print_recipe(info)


def _print_recipe(info: dict[str, Any]) -> None:
    r = info["recipe"]
    t = Table(title=f"recipe {r['id']}", show_header=False)
    for key in ("order", "grain", "epochs", "reshuffle", "max_repeats", "seed"):
        if key in r:
            t.add_row(key, str(r[key]))
    sp = r["sparsity"]
    t.add_row("sparsity", f"keep {sp['keep']:g}, {sp['pattern']}, chunks of {sp['chunk_tokens']} tokens")
    if r.get("phases"):
        for i, ph in enumerate(r["phases"]):
            t.add_row(f"phase {i}", f"{len(ph['books'])} books, {ph['order']}")
    else:
        t.add_row("books", f"{len(r['books'])}")
    if "stream" in info:
        s = info["stream"]
        t.add_row("windows", f"{s['n_windows']:,} × (T+1 = {s['seq_len'] + 1})")
        t.add_row("tokens", f"{s['total_tokens']:,}")
    if "windows_out" in info:
        t.add_row("window order", info["windows_out"])
    if r.get("meta"):
        t.add_row("meta", str(r["meta"]))
    console.print(t)


@recipe_app.command("cluster")
def cluster_cmd(
    library: Annotated[Path, typer.Option("--library", "-l", help="The library folder.")],
    k: Annotated[int, typer.Option("--k", help="Number of topic clusters.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the clustering.")] = 0,
    json_out: JsonOpt = False,
) -> None:
    """Cluster the library's books by topic (token counts) into the catalog column 'cluster'."""
    from collections import Counter

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bookmix.library import Library
    from bookmix.recipes import cluster_books

    lib = Library.open(library)
    columns = (TextColumn("vectorising books"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=json_out) as bar:
        task = bar.add_task("cluster", total=None)
        labels = cluster_books(lib, k, seed, progress=lambda done, total: bar.update(task, completed=done, total=total))
    sizes = Counter(labels.values())
    if json_out:
        print_json({"k": k, "books": len(labels), "sizes": {str(c): sizes[c] for c in sorted(sizes)}})
        return
    console.print(
        f"{len(labels)} books in {len(sizes)} clusters; sizes: " + ", ".join(str(sizes[c]) for c in sorted(sizes))
    )
