"""Errors a user can act on.

Anything raised as a :class:`BookmixError` is printed by the CLI as one clear line (no traceback) and exits with
status 2. Messages name the file, field or value at fault and the reason.
"""

from __future__ import annotations


class BookmixError(Exception):
    """A problem with the user's input or environment, with a message that says what and where."""


class ConfigError(BookmixError):
    """An invalid YAML/JSON configuration: the message starts with the field path."""


class MissingExtraError(BookmixError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        why = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{why}: pip install 'bookmix[{extra}]'")


def require(module: str, extra: str, purpose: str = ""):
    """Import an optional heavy dependency inside the function that needs it, or fail naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only where the extra is missing
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc
