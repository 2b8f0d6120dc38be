"""The training flags of `bookmix train` and `bookmix train-pack`, derived from ``TrainConfig``'s fields: each flag's
default is the field's default and its help the field's docstring, so a setting is declared once, in the config.

    @app.command("train")
    @train_options
    def train_cmd(library: ..., train: TrainConfig) -> None: ...   # --micro-batch, --lr, ... arrive as ``train``
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args, get_origin

import typer

from bookmix.training.config import TrainConfig

FLAGS = ("micro_batch", "grad_accum", "lr", "schedule", "warmup", "decay_fraction", "max_tokens", "seed", "device",
         "dtype", "compile", "eval_every", "eval_windows", "log_every", "checkpoint_every", "checkpoint_seconds")  # fmt: skip
"""The TrainConfig fields a training command takes as flags (the rest, e.g. betas, only from a pipeline YAML)."""


def _flag(name: str) -> inspect.Parameter:
    field = TrainConfig.model_fields[name]
    kind: Any = field.annotation
    help_text = (field.description or "").split("\n")[0]
    if get_origin(kind) is Literal:  # typer takes str; TrainConfig validates the choice
        help_text += f" One of: {', '.join(get_args(kind))}."
        kind = str
    decls = [f"--{name.replace('_', '-')}"] if kind is bool else []
    annotation = Annotated[kind, typer.Option(*decls, help=help_text)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=field.default, annotation=annotation)


def train_options(command: Callable[..., None]) -> Callable[..., None]:
    """Replace ``command``'s ``train: TrainConfig`` parameter by one flag per field of :data:`FLAGS`; the flags are
    validated into a TrainConfig (a bad value fails naming ``train.<field>``) and passed as ``train``."""
    sig = inspect.signature(command, eval_str=True)
    kept = [p for p in sig.parameters.values() if p.name != "train"]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        settings = {name: kwargs.pop(name) for name in FLAGS}
        command(*args, train=TrainConfig.from_dict(settings), **kwargs)

    params = kept + [_flag(name) for name in FLAGS]
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
