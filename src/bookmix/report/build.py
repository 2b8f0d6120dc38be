"""``build_report(campaign, out)``: collect the payload, render the page, write it atomically."""

from __future__ import annotations

from pathlib import Path

from bookmix.report.data import collect
from bookmix.report.html import render_html
from bookmix.utils.io import atomic_write_text


def build_report(campaign_dir: str | Path, out_path: str | Path | None = None, analyze: bool = True) -> Path:
    """Write the campaign's self-contained dashboard (default ``<campaign>/report.html``); returns its path.

    Atomic: a reader (or a kill mid-write) sees the previous report or the new one, never half a file.
    """
    campaign_dir = Path(campaign_dir)
    payload = collect(campaign_dir, analyze=analyze)
    out = Path(out_path) if out_path is not None else campaign_dir / "report.html"
    atomic_write_text(out, render_html(payload))
    return out
