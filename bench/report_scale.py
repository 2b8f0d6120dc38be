"""Scale of the dashboard: a 1000-trial campaign's report — file size and render time in headless Chromium.

Makes a synthetic campaign (real results store, made-up results, 300 logged points per curve) with
``make_campaign`` of tests/support/campaign.py, builds the report and opens it in Debian's Chromium through Playwright.
Prints: payload size with and without curve thinning, file size, collect/build time, and the page's load-to-rendered
time against a baseline page run in the same browser (the same inline Plotly bundle drawing one small chart), so the
ratio says what the dashboard itself costs over loading Plotly. Target (issue 10): < 3 s and < 10 MB.

    .venv/bin/python bench/report_scale.py [--trials 1000] [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip


def baseline_page(path: Path) -> Path:
    from bookmix.report.html import plotly_js

    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'></head><body>"
        "<div id='c' style='width:600px;height:320px'></div><script>" + plotly_js() + "</script><script>"
        "Plotly.newPlot('c', [{x: [1, 2, 3], y: [3, 1, 2]}]).then(() => { document.body.dataset.rendered = '1'; });"
        "</script></body></html>",
        encoding="utf-8",
    )
    return path


def load_seconds(browser, url: str, click: bool = False) -> tuple[float, float | None, float | None]:
    """(navigation start → every chart drawn, the page's own render ms, a leaderboard click's ms) in a fresh page."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("document.body.dataset.rendered", timeout=60_000)
    wall = time.perf_counter() - t0
    render_ms = page.evaluate("window.bookmixRenderMs || null")
    click_ms = None
    if click:
        t1 = time.perf_counter()
        page.locator("#leaderboard-table tr.row").nth(3).click()
        page.wait_for_selector("#recipe-detail .detail")
        click_ms = (time.perf_counter() - t1) * 1000
    page.close()
    if errors:
        raise SystemExit(f"console errors on {url}: {errors[:3]}")
    return wall, render_ms, click_ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=1000, help="search + replicate trials (verification adds 9)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build the campaign here and keep it")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from bookmix.report import build_report, collect
    from bookmix.report.html import payload_json, plotly_js

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' builders (support/)
    from support.campaign import make_campaign

    root = args.keep or Path(tempfile.mkdtemp(prefix="bookmix_report_scale_"))
    recipes = int(round(args.trials / 1.25))  # a quarter of the recipes get a second seed
    t0 = time.perf_counter()
    camp = root / "camp"
    if (camp / "campaign.sqlite").exists():  # --keep DIR from an earlier run: measure the same campaign again
        print(f"campaign: reusing {camp}")
    else:
        camp = make_campaign(camp, recipes=recipes, books_per_set=50, pool=2000, curve_points=300, pending=20,
                             running=4, failed=6)  # fmt: skip
        print(f"campaign: {recipes} recipes, made in {time.perf_counter() - t0:.1f} s at {camp}")

    t0 = time.perf_counter()
    collect(camp)
    t_first = time.perf_counter() - t0  # includes importing the eval suite (torch) to read the objective
    t0 = time.perf_counter()
    payload = collect(camp)
    t_collect = time.perf_counter() - t0
    n_trials = payload["overview"]["total"]
    thinned = len(payload_json(payload).encode())
    full = len(payload_json(collect(camp, max_curve_points=10**9)).encode())
    cache: dict = {}
    collect(camp, analyze=False, curve_cache=cache)
    t0 = time.perf_counter()
    collect(camp, analyze=False, curve_cache=cache)  # what `bookmix serve` does when the store changes
    t_live = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = build_report(camp, root / "report.html")
    t_build = time.perf_counter() - t0
    size = out.stat().st_size
    print(f"trials {n_trials}, recipes {len(payload['leaderboard'])}, curves {len(payload['curves'])}")
    print(f"collect {t_collect:.2f} s (first call, imports included, {t_first:.2f} s), build_report {t_build:.2f} s (findings from findings.json); "
          f"live rebuild with the curve cache warm {t_live:.2f} s")  # fmt: skip
    print(f"payload JSON {thinned / 1e6:.2f} MB thinned vs {full / 1e6:.2f} MB with every logged point "
          f"(ratio {full / thinned:.1f}x); Plotly bundle {len(plotly_js().encode()) / 1e6:.2f} MB")  # fmt: skip
    print(f"report file {size / 1e6:.2f} MB (target < 10 MB): {'OK' if size < 10e6 else 'OVER'}")

    base = baseline_page(root / "baseline.html")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        load_seconds(browser, base.as_uri())  # warm the browser's caches and process pool once
        base_s, rep_s, render_ms, click_ms = [], [], [], []
        for _ in range(args.repeats):
            base_s.append(load_seconds(browser, base.as_uri())[0])
            wall, r_ms, c_ms = load_seconds(browser, out.as_uri(), click=True)
            rep_s.append(wall)
            render_ms.append(r_ms)
            click_ms.append(c_ms)
        browser.close()
    b, r = statistics.median(base_s), statistics.median(rep_s)
    print(f"baseline (Plotly + 1 chart) load→drawn: median {b:.2f} s over {args.repeats}")
    print(f"report load→every chart drawn: median {r:.2f} s (min {min(rep_s):.2f}, max {max(rep_s):.2f}), "
          f"ratio to baseline {r / b:.1f}x; JS render {statistics.median(render_ms):.0f} ms; "
          f"leaderboard click → detail {statistics.median(click_ms):.0f} ms")  # fmt: skip
    print(f"target < 3 s: {'OK' if r < 3.0 else 'OVER'}")


if __name__ == "__main__":
    main()
