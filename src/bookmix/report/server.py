"""``bookmix serve CAMPAIGN``: the dashboard, live, from the standard library's http.server.

Routes (GET and HEAD only):

    /                  the dashboard, rendered from the live results store; the page polls /api/data.json
    /api/data.json     the payload (``bookmix.report.collect``), recomputed when the campaign's files change
    /files/<path>      a file inside the campaign folder (logs, findings.json, a trial's eval.json)

Nothing outside the campaign folder is ever served: a path is resolved (symlinks and ``..`` included) and must land
inside the folder. The server binds 127.0.0.1 unless told otherwise, because a campaign folder holds the user's
library paths and samples of their books.
"""

from __future__ import annotations

import logging
import mimetypes
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bookmix.campaign.store import open_campaign
from bookmix.errors import BookmixError
from bookmix.report.data import collect, fingerprint
from bookmix.report.html import payload_json, render_html

log = logging.getLogger(__name__)

POLL_MS = 5000
"""The page asks for fresh data every 5 s: a nano trial takes tens of seconds, so nothing is missed for long."""

MIN_RECOMPUTE_S = 2.0
"""At most one payload rebuild per 2 s however many tabs poll (a rebuild reads only what changed: ~0.1 s at 1000
trials)."""

ANALYZE_EVERY_S = 60.0
"""Before the analysis stage writes findings.json, the server computes findings itself, at most once a minute: on a
1000-trial campaign that is seconds of CPU the training driver needs more. In between, the last findings are shown."""

TEXT_SUFFIXES = {".yaml": "text/plain", ".yml": "text/plain", ".jsonl": "text/plain", ".log": "text/plain"}
"""A campaign's own text files, shown in the browser rather than downloaded (mimetypes does not know them all)."""


class LiveReport:
    """The payload of a campaign, rebuilt when its files change (checked by a cheap stat), shared by all requests."""

    def __init__(
        self,
        campaign_dir: str | Path,
        analyze: bool = True,
        min_interval: float = MIN_RECOMPUTE_S,
        analyze_every: float = ANALYZE_EVERY_S,
    ) -> None:
        self.campaign_dir = Path(campaign_dir)
        open_campaign(self.campaign_dir).close()  # a BookmixError naming the folder when it is not a campaign
        self.analyze = analyze
        self.min_interval = min_interval
        self.analyze_every = analyze_every
        self._lock = threading.Lock()
        self._payload: dict[str, Any] | None = None
        self._token: str | None = None
        self._built_at = 0.0
        self._curves: dict[str, tuple] = {}
        self._findings: dict[str, Any] | None = None
        self._analyzed_at = 0.0

    def payload(self) -> dict[str, Any]:
        with self._lock:
            token = fingerprint(self.campaign_dir)
            now = time.monotonic()
            fresh = self._payload is not None and (token == self._token or now - self._built_at < self.min_interval)
            if not fresh:
                self._payload = self._build(now)
                self._token = token
                self._built_at = now
            assert self._payload is not None
            return self._payload

    def _build(self, now: float) -> dict[str, Any]:
        due = self._findings is None or now - self._analyzed_at >= self.analyze_every
        payload = collect(self.campaign_dir, analyze=self.analyze and due, curve_cache=self._curves)
        if payload["findings_source"] == "computed":
            self._findings, self._analyzed_at = payload["findings"], now
        elif payload["findings_source"] == "none" and self.analyze and self._findings is not None:
            payload["findings"], payload["findings_source"] = self._findings, "computed"
            payload["proposal"] = self._findings.get("proposal")
            payload["notes"] = [n for n in payload["notes"] if not n.startswith("findings")] + [
                f"findings computed {now - self._analyzed_at:.0f} s ago from the trials finished then "
                f"(recomputed at most every {self.analyze_every:.0f} s until the analysis stage writes findings.json)"
            ]
        return payload


class ReportServer(ThreadingHTTPServer):
    daemon_threads = True  # a browser's open keep-alive connection must not keep the process alive on Ctrl-C

    def __init__(self, address: tuple[str, int], live: LiveReport, interval_ms: int = POLL_MS) -> None:
        self.live = live
        self.root = live.campaign_dir.resolve()
        self.interval_ms = interval_ms
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: ReportServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        path = urlsplit(self.path).path
        try:
            if path in ("/", "/index.html"):
                live = {"endpoint": "api/data.json", "interval_ms": self.server.interval_ms}
                body = render_html(self.server.live.payload(), live=live).encode()
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", body, head)
            elif path == "/api/data.json":
                self._send(HTTPStatus.OK, "application/json", payload_json(self.server.live.payload()).encode(), head)
            elif path.startswith("/files/"):
                self._file(unquote(path[len("/files/") :]), head)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", head)
        except BookmixError as exc:  # e.g. the campaign folder was moved away while serving
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", f"{exc}\n".encode(), head)

    def _file(self, rel: str, head: bool) -> None:
        target = inside(self.server.root, rel)
        if target is None:
            self._send(HTTPStatus.FORBIDDEN, "text/plain; charset=utf-8", b"outside the campaign folder\n", head)
            return
        if not target.is_file():
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", head)
            return
        kind = TEXT_SUFFIXES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind == "application/json":
            kind += "; charset=utf-8"
        self._send(HTTPStatus.OK, kind, target.read_bytes(), head)

    def _send(self, status: HTTPStatus, kind: str, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(body)


def inside(root: Path, rel: str) -> Path | None:
    """``root/rel`` resolved (``..`` and symlinks followed) if it stays inside ``root``, else None."""
    if "\x00" in rel or rel.startswith("/") or "\\" in rel:
        return None
    target = (root / rel).resolve()
    return target if target == root or target.is_relative_to(root) else None


def make_server(
    campaign_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    interval_ms: int = POLL_MS,
    analyze: bool = True,
    min_interval: float = MIN_RECOMPUTE_S,
    analyze_every: float = ANALYZE_EVERY_S,
) -> ReportServer:
    """A bound (not yet serving) live dashboard server; port 0 picks a free port (see ``server.url``)."""
    live = LiveReport(campaign_dir, analyze=analyze, min_interval=min_interval, analyze_every=analyze_every)
    try:
        return ReportServer((host, port), live, interval_ms)
    except OSError as exc:
        raise BookmixError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
