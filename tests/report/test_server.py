"""The live server on 127.0.0.1: the page, the JSON endpoint that follows the store, and nothing outside the folder."""

from __future__ import annotations

import http.client
import json
import os
import socket
from urllib.parse import urlsplit

import pytest

from bookmix.errors import BookmixError
from bookmix.report import collect, make_server
from bookmix.report.server import LiveReport

from .conftest import complete_one_pending


def _get(server, path: str) -> tuple[int, bytes, dict]:
    """A raw request: the path goes on the wire exactly as written (no client-side normalisation of '..')."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.read(), dict(res.getheaders())
    finally:
        conn.close()


def test_page_and_data_follow_the_store(campaign_copy, serving):
    server = serving(campaign_copy, min_interval=0.0)
    assert server.server_address[0] == "127.0.0.1"  # the default binds loopback only
    status, body, headers = _get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'"endpoint":"api/data.json"' in body and b"plotly.js v" in body

    status, body, headers = _get(server, "/api/data.json")
    data = json.loads(body)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    done = data["overview"]["counts"]["completed"]

    tid = complete_one_pending(campaign_copy, objective=0.25)
    data2 = json.loads(_get(server, "/api/data.json")[1])
    assert data2["overview"]["counts"]["completed"] == done + 1 and data2["token"] != data["token"]
    assert any(t["id"] == tid and t["state"] == "completed" for t in data2["trials"])


def test_serves_files_inside_the_campaign_only(campaign_copy, serving, tmp_path):
    secret = tmp_path / "secret.txt"  # beside the campaign folder, not in it
    secret.write_text("TOP-SECRET-BESIDE-THE-CAMPAIGN", encoding="utf-8")
    os.symlink(secret, campaign_copy / "link-out.txt")
    server = serving(campaign_copy)

    status, body, headers = _get(server, "/files/pipeline.yaml")
    assert status == 200 and b"synthetic" in body and "charset=utf-8" in headers["Content-Type"]
    trial = next((campaign_copy / "trials").iterdir()).name
    assert json.loads(_get(server, f"/files/trials/{trial}/eval.json")[1])["samples"]

    attempts = ["/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/..%2fsecret.txt", "/../secret.txt",
                "/files/trials/../../secret.txt", "/files/link-out.txt", f"/files/{secret}", "/files//etc/passwd",
                "/files/%2Fetc%2Fpasswd", "/files/..\\secret.txt", "/secret.txt", "/files/a%00b"]  # fmt: skip
    for path in attempts:
        status, body, _ = _get(server, path)
        assert status in (403, 404), (path, status)
        assert b"TOP-SECRET" not in body and b"root:" not in body, path
    assert _get(server, "/files/../secret.txt")[0] == 403
    assert _get(server, "/files/nope.txt")[0] == 404


def test_refuses_a_folder_that_is_not_a_campaign_and_a_busy_port(tmp_path, campaign):
    with pytest.raises(BookmixError, match="not a campaign folder"):
        make_server(tmp_path, port=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(BookmixError, match=f"--port {port}: cannot listen on 127.0.0.1:{port}"):
            make_server(campaign, port=port)


def test_live_rebuilds_read_only_what_changed(campaign_copy):
    (campaign_copy / "findings.json").unlink()  # before the analysis stage: the server computes findings itself
    live = LiveReport(campaign_copy, min_interval=0.0, analyze_every=3600.0)
    first = live.payload()
    assert first["findings_source"] == "computed" and live.payload() is first  # unchanged store: cached
    tid = complete_one_pending(campaign_copy, objective=0.25)
    second = live.payload()
    assert second is not first and any(t["id"] == tid and t["state"] == "completed" for t in second["trials"])
    assert tid in second["curves"] and second["curves"] == collect(campaign_copy, analyze=False)["curves"]
    # the analysis is not rerun within analyze_every: the last findings are shown and the page says how old they are
    assert second["findings"] is first["findings"] and any("s ago" in n for n in second["notes"])
    assert not any("switched off" in n for n in second["notes"])
