"""One self-contained HTML file from a payload: the page template, its CSS and JS, Plotly and the data, all inline.

Nothing is fetched when the page opens (no CDN, no fonts), so a report mailed or copied off the workstation works
offline. Plotly's JavaScript is read from the installed ``plotly`` package when the report is built (it is never
committed here); a missing package fails with the extra to install.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
from pathlib import Path
from typing import Any

from bookmix.errors import MissingExtraError

ASSETS = Path(__file__).with_name("assets")
_MARKER = re.compile(r"<!--@(\w+)@-->")


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """The minified Plotly bundle shipped inside the ``plotly`` Python package (found without importing it)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise MissingExtraError("plotly", "report", "the dashboard's charts")
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise MissingExtraError("plotly", "report", f"the dashboard's charts ({path} is missing)")
    return _script_safe(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=4)
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def _script_safe(js: str) -> str:
    """Inline JS must not close its own <script> element early."""
    return js.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def _finite(obj: Any) -> Any:
    """JSON has no NaN or infinity: they become null (the page shows them as '–')."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def payload_json(payload: dict[str, Any]) -> str:
    """The payload as JSON that is safe inside a <script> element ('<' escaped, so no tag can close it)."""
    text = json.dumps(_finite(payload), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(payload: dict[str, Any], live: dict[str, Any] | None = None) -> str:
    """The whole page. ``live`` ({"endpoint": url, "interval_ms": n}) makes the page poll for fresh data."""
    title = f"bookmix · {payload.get('campaign', {}).get('name', 'campaign')}"
    parts = {
        "TITLE": title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
        "CSS": _asset("dashboard.css"),
        "PLOTLY": plotly_js(),
        "DATA": payload_json(payload),
        "LIVE": payload_json(live) if live else "null",
        "APP": _script_safe(_asset("dashboard.js")),
    }
    return _MARKER.sub(lambda m: parts[m.group(1)], _asset("dashboard.html"))
