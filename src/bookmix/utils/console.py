"""The one rich console for human output. It writes to stderr, so that ``--json`` leaves stdout holding exactly one
JSON object; the CLI and the campaign's progress bars share it."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True)
