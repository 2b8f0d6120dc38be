"""The HTML file: self-contained (nothing fetched), data embedded safely, written atomically, small."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from bookmix.report import build_report, collect, render_html
from bookmix.report.html import payload_json


class _Refs(HTMLParser):
    """Every URL the page would load: src/href attributes and <link>s."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key) is not None:
                self.refs.append((tag, a[key]))
        if tag == "script":
            self.scripts.append(a)


def test_report_is_self_contained(campaign, tmp_path):
    out = build_report(campaign, tmp_path / "sub" / "report.html")
    text = out.read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(text)
    # only in-page anchors and the empty data: favicon; no CDN, no external script, stylesheet or font
    assert refs.refs and all(v.startswith(("#", "data:")) for _, v in refs.refs), refs.refs
    assert all("src" not in s for s in refs.scripts)
    assert "Plotly" in text and "plotly.js v" in text  # the bundle itself is inline
    assert out.stat().st_size < 10_000_000
    assert list(out.parent.iterdir()) == [out]  # atomic write: no temporary file left beside it

    data = re.search(r'<script type="application/json" id="bookmix-data">(.*?)</script>', text, re.S).group(1)
    payload = json.loads(data)
    assert payload["overview"]["counts"]["completed"] > 0 and payload["leaderboard"]
    assert json.loads(re.search(r'id="bookmix-live">(.*?)</script>', text, re.S).group(1)) is None


def test_default_path_and_overwrite(campaign_copy):
    first = build_report(campaign_copy)
    assert first == campaign_copy / "report.html" and first.exists()
    before = first.stat().st_mtime_ns
    assert build_report(campaign_copy, analyze=False) == first and first.stat().st_mtime_ns >= before


def test_embedded_text_cannot_break_out_of_its_script(campaign):
    payload = collect(campaign, analyze=False)
    payload["book_titles"][0] = "</script><script>alert(1)</script> <!-- \u2028"
    payload["trials"][0]["objective"] = float("nan")
    page = render_html(payload, live={"endpoint": "api/data.json", "interval_ms": 1000})
    assert "</script><script>alert" not in page and "alert(1)" in page
    blob = re.search(r'id="bookmix-data">(.*?)</script>', page, re.S).group(1)
    back = json.loads(blob)
    assert back["book_titles"][0] == payload["book_titles"][0] and back["trials"][0]["objective"] is None
    assert json.loads(re.search(r'id="bookmix-live">(.*?)</script>', page, re.S).group(1))["interval_ms"] == 1000
    assert payload_json({"a": float("inf")}) == '{"a":null}'
