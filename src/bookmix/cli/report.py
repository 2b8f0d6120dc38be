"""`bookmix report` and `bookmix serve`: the dashboard of a campaign (parse, call, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bookmix.cli.app import app, console, print_json


@app.command()
def report(
    campaign: Annotated[Path, typer.Argument(help="Campaign folder (holds campaign.sqlite).")],
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="HTML file to write (default CAMPAIGN/report.html).")
    ] = None,
    analyze: Annotated[
        bool, typer.Option(help="Compute findings from the trials when findings.json is absent.")
    ] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print {report, bytes} as one JSON object.")] = False,
) -> None:
    """Write a self-contained HTML dashboard of a campaign (works offline: charts and data inline)."""
    from bookmix.report import build_report

    path = build_report(campaign, out, analyze=analyze)
    size = path.stat().st_size
    if json_out:
        print_json({"report": str(path), "bytes": size})
        return
    console.print(f"report: {path} ({size / 1e6:.1f} MB)")


@app.command()
def serve(
    campaign: Annotated[Path, typer.Argument(help="Campaign folder (holds campaign.sqlite).")],
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8000,
    host: Annotated[
        str, typer.Option(help="Address to bind; 127.0.0.1 keeps the dashboard on this machine.")
    ] = "127.0.0.1",
    interval: Annotated[float, typer.Option(help="Seconds between the page's refreshes.")] = 5.0,
    analyze: Annotated[
        bool, typer.Option(help="Compute findings from the trials when findings.json is absent.")
    ] = True,
) -> None:
    """Serve the live dashboard of a (running) campaign; it refreshes as trials finish. Ctrl-C stops it."""
    from bookmix.errors import BookmixError
    from bookmix.report import make_server

    if interval <= 0:
        raise BookmixError(f"--interval: must be > 0 seconds, got {interval:g}")
    server = make_server(campaign, host=host, port=port, interval_ms=int(interval * 1000), analyze=analyze)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/] listening on {host}: other machines can read this campaign's results")
    console.print(f"serving {campaign} at [bold]{server.url}[/] (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()
