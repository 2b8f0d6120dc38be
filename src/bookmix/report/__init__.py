"""The dashboard: one self-contained HTML report of a campaign, and a live server while it runs.

    from bookmix.report import build_report, collect, make_server
    build_report("campaigns/demo", "report.html")      # offline file: Plotly and the data inline, no CDN
    payload = collect("campaigns/demo")                 # the JSON the page renders
    server = make_server("campaigns/demo", port=8000)   # 127.0.0.1 by default; server.serve_forever()

Files, in dependency order: ``downsample`` (thin curves), ``leaderboard`` (recipes ranked with error bars),
``forecast_table`` (the forecast on a few devices), ``data`` (reads the campaign: the payload), ``html`` (the page),
``build`` (write the file), ``server`` (the live view). The page itself is ``assets/dashboard.{html,css,js}``.
"""

from bookmix.report.build import build_report
from bookmix.report.data import collect
from bookmix.report.html import render_html
from bookmix.report.server import ReportServer, make_server

__all__ = ["ReportServer", "build_report", "collect", "make_server", "render_html"]
