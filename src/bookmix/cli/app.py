"""The Typer application and the helpers every command module shares.

Each module in ``bookmix/cli/`` registers its commands on :data:`app` (or adds a sub-app such as ``library``).
Commands only parse arguments, call the Python API and print; all logic lives in the rooms below.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from bookmix.utils.console import console  # noqa: F401 - the command modules import it from here

app = typer.Typer(
    name="bookmix",
    help="Find the training data that makes small language models learn best.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)



@app.callback()
def _root() -> None:
    """Find the training data that makes small language models learn best."""


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout and nothing else."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
