"""`bookmix report` and `bookmix serve` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bookmix.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_report_command_json(campaign, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(campaign), "-o", str(out), "--json", "--no-analyze"]) == 0
    captured = capsys.readouterr()
    obj = json.loads(captured.out)  # exactly one JSON object on stdout
    assert captured.out.count("\n") == 1 and obj == {"report": str(out), "bytes": out.stat().st_size}
    assert out.exists()


def test_report_command_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines on the terminal width
    assert f"{tmp_path / 'nope'}: not a campaign folder" in err and "Traceback" not in err
    assert main(["serve", str(tmp_path), "--interval", "0"]) == 2
    assert "--interval: must be > 0" in " ".join(capsys.readouterr().err.split())


def test_serve_command_serves_on_loopback(campaign):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bookmix", "serve", str(campaign), "--port", "0", "--no-analyze"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        line = ""
        while "http://" not in line and time.time() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
        assert "http://127.0.0.1:" in line, line
        url = line[line.index("http://") :].split()[0]
        with urllib.request.urlopen(url + "api/data.json", timeout=30) as res:
            data = json.loads(res.read())
        assert data["campaign"]["path"] == str(campaign.resolve())
        assert proc.stdout.read(0) == ""
    finally:
        proc.terminate()
        proc.wait(timeout=30)
