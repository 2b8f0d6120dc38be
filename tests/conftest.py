"""Fixtures shared by every room's tests."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest

from bookmix.training.device import torch_threads

SHARED_BOOKS = Path(__file__).resolve().parents[1].parent / "shared" / "books"


@pytest.fixture(scope="session")
def shared_books() -> Path:
    """The 370 real public-domain books beside the checkout; tests that need them skip where they are absent."""
    if not (SHARED_BOOKS / "catalog.csv").exists():
        pytest.skip(f"real books not found at {SHARED_BOOKS} (../shared/books beside the checkout)")
    return SHARED_BOOKS


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored after: the rooms with tiny models make it autouse in their conftest."""
    with torch_threads(1):
        yield


class FlakySite(http.server.BaseHTTPRequestHandler):
    """A real HTTP server's handler for the fetchers' tests: serves ``files`` by path; fails the first N requests of a
    path with 503; drops one answer halfway; honours Range; records (path, Range, User-Agent) of every request."""

    files: dict[str, bytes]
    fail_first: dict[str, int]
    truncate_once: set[str]
    log: list[tuple[str, str, str]]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.log.append((self.path, self.headers.get("Range", ""), self.headers.get("User-Agent", "")))
        if self.fail_first.get(self.path, 0) > 0:
            self.fail_first[self.path] -= 1
            self.send_error(503)
            return
        if self.path not in self.files:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        body = self.files[self.path][start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.truncate_once:  # the connection drops halfway, as on a flaky network
            self.truncate_once.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_site():
    """``start(files)`` serves ``{path: bytes}`` on 127.0.0.1 and returns (base URL, handler class); stopped after."""
    servers = []

    def start(files: dict[str, bytes]) -> tuple[str, type[FlakySite]]:
        handler = type("H", (FlakySite,), {"files": files, "fail_first": {}, "truncate_once": set(), "log": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
