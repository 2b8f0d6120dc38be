"""Command-line entry point: ``bookmix``.

Every module of this package is imported once, and each registers its commands on the shared Typer app, so a new
command is a new module here and nothing else changes. Errors a user can act on (:class:`BookmixError`) print as one
line on stderr and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from rich.markup import escape

from bookmix.cli.app import app, console
from bookmix.errors import BookmixError

_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name != "app":
            importlib.import_module(f"{__name__}.{info.name}")
    _registered = True


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as a console script, exits with) the status code."""
    _register()
    try:
        app(args=argv, prog_name="bookmix")  # standalone mode: Click prints usage errors and raises SystemExit
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BookmixError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        code = 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        code = 130
    return _exit(code, argv)


def _exit(code: int, argv: list[str] | None) -> int:
    if argv is None:  # called as the console script
        sys.exit(code)
    return code


__all__ = ["app", "main"]
