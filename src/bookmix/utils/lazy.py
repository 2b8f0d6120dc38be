"""Lazy re-exports for a package's ``__init__``: names are imported from their module on first use.

A package whose public names pull heavy dependencies (scipy, torch) can then be imported for a light submodule (its
config) without paying for, or needing, the rest::

    __getattr__, __dir__ = lazy_exports(__name__, {"analyze": "findings", "AnalysisConfig": "config"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(``__getattr__``, ``__dir__``) for ``package``: ``names`` maps a public name to the submodule defining it."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__
