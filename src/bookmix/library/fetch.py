"""Fetch Project Gutenberg plain texts over HTTP: politely (a pause between requests), with retries, resumable.

URL layout (the site's and its mirrors'): ``/cache/epub/ID/pgID.txt`` for a book, ``/browse/scores/top`` for the
list of most downloaded books. A finished file is never fetched again; a partial one (``.pgID.txt.part``) is
continued with an HTTP Range request where the server allows it, and renamed into place only when complete.
"""

from __future__ import annotations

import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bookmix import __version__
from bookmix.errors import BookmixError
from bookmix.utils.io import fsync_dir

USER_AGENT = f"bookmix/{__version__} (polite fetcher; one request at a time)"
TIMEOUT_S = 60.0
_TOP_LINK = re.compile(r'href="/ebooks/(\d+)"')


@dataclass
class FetchResult:
    out: str
    fetched: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**asdict(self), "failed": {str(k): v for k, v in self.failed.items()}}


class _Polite:
    """One request at a time, at least ``delay`` seconds apart, retried with exponential backoff."""

    def __init__(self, delay: float, retries: int) -> None:
        self.delay = max(0.0, delay)
        self.retries = max(1, retries)
        self.last = 0.0

    def open(self, url: str, headers: dict[str, str] | None = None):
        err: Exception | None = None
        for attempt in range(self.retries):
            wait = self.last + self.delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self.last = time.monotonic()
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
            try:
                return urllib.request.urlopen(req, timeout=TIMEOUT_S)
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 500, 502, 503, 504):
                    raise  # 404 and friends: retrying will not help
                err = exc
                retry_after = exc.headers.get("Retry-After", "") if exc.headers else ""
                pause = float(retry_after) if retry_after.isdigit() else 0.0
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                err, pause = exc, 0.0
            if attempt + 1 < self.retries:
                time.sleep(max(pause, max(self.delay, 0.05) * 2**attempt))
        assert err is not None
        raise err


def book_url(mirror: str, book_id: int) -> str:
    return f"{mirror.rstrip('/')}/cache/epub/{book_id}/pg{book_id}.txt"


def top_ids(mirror: str, n: int, http: _Polite) -> list[int]:
    """The first ``n`` distinct ids linked from the site's top-downloads page, in page order."""
    url = f"{mirror.rstrip('/')}/browse/scores/top"
    try:
        with http.open(url) as resp:
            page = resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        raise BookmixError(f"{url}: cannot read the top list ({exc})") from exc
    ids: list[int] = []
    for m in _TOP_LINK.finditer(page):
        i = int(m.group(1))
        if i not in ids:
            ids.append(i)
        if len(ids) == n:
            break
    if not ids:
        raise BookmixError(f"{url}: no /ebooks/ID links found")
    return ids


def fetch_gutenberg(
    out: str | os.PathLike,
    ids: list[int] | None = None,
    top: int | None = None,
    mirror: str = "https://www.gutenberg.org",
    delay: float = 2.0,
    retries: int = 4,
    log: Callable[[str], None] | None = None,
) -> FetchResult:
    """Download books by id or the ``top`` most popular into ``out`` as ``pgID.txt``; failures are listed, not fatal."""
    if not ids and not top:
        raise BookmixError("fetch gutenberg: give --ids ID... or --top N")
    if top is not None and top < 1:
        raise BookmixError(f"--top: must be ≥ 1, got {top}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    http = _Polite(delay, retries)
    wanted = list(dict.fromkeys(ids or [])) + (top_ids(mirror, top, http) if top else [])
    result = FetchResult(out=str(out))
    for book_id in dict.fromkeys(wanted):
        final = out / f"pg{book_id}.txt"
        if final.exists():
            result.skipped.append(book_id)
            continue
        try:
            _download(http, book_url(mirror, book_id), final)
            result.fetched.append(book_id)
            if log:
                log(f"fetched {final.name}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            result.failed[book_id] = str(exc)
    return result


def _download(http: _Polite, url: str, final: Path) -> None:
    part = final.with_name(f".{final.name}.part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = http.open(url, headers)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:  # 416: the part already holds the whole file
            raise
        resp = None
    if resp is not None:
        with resp:
            append = have and resp.status == 206
            expected = resp.headers.get("Content-Length")
            with open(part, "ab" if append else "wb") as fh:
                got = 0
                while chunk := resp.read(1 << 16):
                    fh.write(chunk)
                    got += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            if expected is not None and got != int(expected):
                raise ValueError(f"{url}: connection closed after {got} of {expected} bytes (will resume)")
    os.replace(part, final)
    fsync_dir(final.parent)
