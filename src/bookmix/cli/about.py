"""`bookmix version`."""

from __future__ import annotations

from bookmix import __version__
from bookmix.cli.app import app


@app.command()
def version() -> None:
    """Print bookmix's version."""
    print(__version__)
