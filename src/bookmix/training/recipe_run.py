"""Train one model on one recipe over one library: the composition behind ``bookmix train``.

    result = train_recipe(library_dir, recipe, "nano", train_cfg, out_dir)
"""

from __future__ import annotations

from pathlib import Path

from bookmix.models.config import ModelConfig, preset
from bookmix.training.config import TrainConfig
from bookmix.training.heldout import holdout_windows
from bookmix.training.loop import LogFn, train
from bookmix.training.result import TrainResult


def train_recipe(
    library: str | Path,
    recipe,  # noqa: ANN001 - bookmix.recipes.Recipe
    model: str | ModelConfig,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    seq_len: int | None = None,
    device: str | None = None,
    on_log: LogFn | None = None,
    meta: dict | None = None,
) -> TrainResult:
    """Open the library, stream the recipe at ``seq_len`` (default: the model's block size), hold out the library's
    holdout books for the held-out loss, and train. The recipe and the library path are stored in the checkpoint."""
    from bookmix.library import Library

    lib = Library.open(library)
    cfg = preset(model, vocab_size=lib.vocab_size) if isinstance(model, str) else model.with_vocab(lib.vocab_size)
    t = seq_len or cfg.block_size
    stream = recipe.stream(lib, t)
    heldout = holdout_windows(lib, t, train_cfg.eval_windows)
    info = {"recipe": recipe.to_dict(), "recipe_id": recipe.id, "library": str(Path(library).resolve()), **(meta or {})}
    return train(cfg, train_cfg, stream, out_dir, heldout=heldout, device=device, on_log=on_log, meta=info)
