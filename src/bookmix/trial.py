"""A trial: one recipe over one library, trained. The one composition of library + recipe + held-out windows + metadata,
behind `bookmix train`, `bookmix train-pack` and every campaign trial (``campaign.worker``), so that one recipe gets
the same stream, the same held-out windows (``recipes.heldout``) and so the same held-out loss whichever runs it.

    result = train_recipe("lib/", recipe, "nano", TrainConfig(), "runs/ab12")
    results = train_recipes_packed("lib/", recipes, "nano", TrainConfig(), [Path("runs") / r.id for r in recipes])
    result = finetune_recipe("lib/", recipe, FinetuneConfig(base="models/base"), TrainConfig(lr=2e-4), "runs/ab12")

The trainers below take windows, not books (``training``); the library is opened here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bookmix.errors import BookmixError
from bookmix.library import Library
from bookmix.models.config import ModelConfig, preset
from bookmix.recipes.heldout import holdout_windows
from bookmix.recipes.recipe import Recipe
from bookmix.training.config import TrainConfig
from bookmix.training.engine import LogFn
from bookmix.training.result import TrainResult

if TYPE_CHECKING:
    from bookmix.training.finetune import FinetuneConfig

LibraryLike = str | Path | Library


def open_library(library: LibraryLike) -> Library:
    return Library.open(library) if isinstance(library, str | Path) else library


def trial_meta(lib: Library, recipe: Recipe, meta: dict | None = None) -> dict:
    """What a trial's checkpoint stores of where it came from: the recipe (its exact data order), the library."""
    return {"recipe": recipe.to_dict(), "recipe_id": recipe.id, "library": str(Path(lib.path).resolve())} | (meta or {})


def model_for(lib: Library, model: str | ModelConfig) -> ModelConfig:
    """A preset by name, or a config, at the library's vocabulary size."""
    return preset(model, vocab_size=lib.vocab_size) if isinstance(model, str) else model.with_vocab(lib.vocab_size)


def train_recipe(
    library: LibraryLike,
    recipe: Recipe,
    model: str | ModelConfig,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    seq_len: int | None = None,
    device: Any = None,
    on_log: LogFn | None = None,
    meta: dict | None = None,
) -> TrainResult:
    """Stream the recipe at ``seq_len`` (default: the model's block size), hold out the library's holdout books for the
    held-out loss, and train (``training.loop.train``). The recipe and the library path are stored in the checkpoint."""
    from bookmix.training.loop import train

    lib = open_library(library)
    cfg = model_for(lib, model)
    t = seq_len or cfg.block_size
    held = holdout_windows(lib, t, train_cfg.eval_windows)
    info = trial_meta(lib, recipe, meta)
    return train(cfg, train_cfg, recipe.stream(lib, t), out_dir, held, device, on_log, info)


def train_recipes_packed(
    library: LibraryLike,
    recipes: Sequence[Recipe],
    model: str | ModelConfig,
    train_cfg: TrainConfig,
    out_dirs: Sequence[str | Path],
    pack: int | None = None,
    seq_len: int | None = None,
    device: Any = None,
    on_log: LogFn | None = None,
    seeds: Sequence[int] | None = None,
    metas: Sequence[dict | None] | None = None,
) -> list[TrainResult]:
    """What :func:`train_recipe` does for one recipe, for many: ``pack`` models at a time (default
    ``auto_pack_size``), recipe k into ``out_dirs[k]`` with ``seeds[k]`` and ``metas[k]``. ``on_log`` records carry
    ``recipe_id`` and ``pack_index`` (the recipe's position). Re-running skips finished recipes."""
    from bookmix.training.pack_size import auto_pack_size
    from bookmix.training.packed import train_pack

    if pack is not None and pack < 1:
        raise BookmixError(f"--pack: must be ≥ 1, got {pack}")
    lib = open_library(library)
    cfg = model_for(lib, model)
    t = seq_len or cfg.block_size
    k = pack or auto_pack_size(cfg, train_cfg, device, seq_len=t)
    held = holdout_windows(lib, t, train_cfg.eval_windows)
    results: list[TrainResult] = []
    for lo in range(0, len(recipes), k):
        group = list(recipes[lo : lo + k])

        def tagged(record: dict, group: list[Recipe] = group, lo: int = lo) -> None:
            if on_log is not None:
                on_log({**record, "recipe_id": group[record["pack_index"]].id, "pack_index": lo + record["pack_index"]})

        streams, dirs = [r.stream(lib, t) for r in group], out_dirs[lo : lo + k]
        infos = [trial_meta(lib, r, (metas or [None] * len(recipes))[lo + i]) for i, r in enumerate(group)]
        group_seeds = None if seeds is None else seeds[lo : lo + k]
        results += train_pack(cfg, train_cfg, streams, dirs, held, device, group_seeds, tagged, infos)
    return results


def finetune_recipe(
    library: LibraryLike,
    recipe: Recipe,
    ft: FinetuneConfig,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    device: Any = None,
    on_log: LogFn | None = None,
    meta: dict | None = None,
) -> TrainResult:
    """The fine-tune counterpart of :func:`train_recipe` : check the
    base reads the library's tokens, stream the recipe at the base's context (capped at 1024), continue pretraining."""
    from bookmix.training.finetune import base_context, check_tokenizer, finetune

    lib = open_library(library)
    t = ft.seq_len or min(base_context(ft.base), 1024)  # also: is it a model folder at all
    check_tokenizer(ft.base, lib)
    held = holdout_windows(lib, t, train_cfg.eval_windows)
    info = trial_meta(lib, recipe, meta)
    return finetune(ft, train_cfg, recipe.stream(lib, t), out_dir, held, device, on_log, info)
