"""Errors a user can act on.

Anything raised as a :class:`BookmixError` is printed by the CLI as one clear line (no traceback) and exits with
status 2. Messages name the file, field or value at fault and the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class BookmixError(Exception):
    """A problem with the user's input or environment, with a message that says what and where."""


class ConfigError(BookmixError):
    """An invalid YAML/JSON configuration: the message starts with the field path."""


_BOUNDS = {
    "greater_than_equal": ("≥", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("≤", "le"),
    "less_than": ("<", "lt"),
}


def field_error(exc: ValidationError, prefix: str = "") -> str:
    """pydantic's first error as ``field.path: reason``, the one form of every bookmix config error.

    ``prefix`` is the path of the validated mapping (``train``, ``tasks[2]``); list indices read ``[i]``. A validator
    whose message names a deeper field (``"books_per_set: must be ≥ 1, got 0"``, ``"[0].n: ..."``) has it joined on.
    """
    err = exc.errors()[0]
    path = prefix
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    reason = err["msg"].removeprefix("Value error, ")
    head, sep, rest = reason.partition(": ")
    if kind == "value_error" and sep and " " not in head:
        path, reason = path + (head if head.startswith("[") or not path else f".{head}"), rest
    elif kind in _BOUNDS:
        sign, key = _BOUNDS[kind]
        reason = f"must be {sign} {ctx.get(key)}, got {got!r}"
    elif kind == "extra_forbidden":
        reason = "unknown field"
    elif kind == "missing":
        reason = "missing (required)"
    elif kind != "value_error" and isinstance(got, str | int | float | bool):
        reason = f"{reason[:1].lower()}{reason[1:]}, got {got!r}"
    return f"{path}: {reason}" if path else reason


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
