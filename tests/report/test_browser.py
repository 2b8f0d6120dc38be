"""The dashboard in a real browser (Debian's Chromium via Playwright): every section and chart renders, nothing is
fetched from outside, no console error, a leaderboard click opens the recipe, and the served page refreshes live."""

from __future__ import annotations

from pathlib import Path

from bookmix.campaign.store import Store
from bookmix.report import build_report

from .conftest import complete_one_pending

SECTIONS = ("overview", "leaderboard", "curves", "findings", "proposal", "transfer", "forecast", "samples")
CHARTS = ("chart-progress", "chart-states", "chart-leaderboard", "chart-curves", "chart-books", "chart-factors",
          "chart-verify", "chart-transfer-0")  # fmt: skip


class Watched:
    """A page whose console errors, uncaught exceptions and outside requests are recorded."""

    def __init__(self, browser, allowed_prefix: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on(
            "request", lambda r: None if r.url.startswith((allowed_prefix, "data:")) else self.outside.append(r.url)
        )

    def open(self, url: str, renders: int = 1) -> None:
        self.page.goto(url)
        self.wait_renders(renders)

    def wait_renders(self, n: int, timeout: float = 20_000) -> None:
        self.page.wait_for_function(f"Number(document.body.dataset.rendered || 0) >= {n}", timeout=timeout)

    def traces(self, chart_id: str) -> int:
        return self.page.evaluate(
            "id => { const d = document.getElementById(id); return d && d.data ? d.data.length : -1 }", chart_id
        )

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.outside == [], self.outside


def _check_full_page(w: Watched) -> None:
    for s in SECTIONS:
        body = w.page.locator(f"#{s} .body")
        assert body.inner_text().strip(), f"section {s} is empty"
        assert body.locator(".empty").count() == 0, f"section {s}: {body.locator('.empty').first.inner_text()}"
    for c in CHARTS:
        assert w.traces(c) > 0, f"{c} has no traces"
        assert w.page.locator(f"#{c} .main-svg").count() >= 1, f"{c} drew no SVG"
    assert w.page.locator("#leaderboard-table tr.row").count() >= 24
    assert w.page.locator("#forecast-table tbody tr").count() == 3
    assert w.page.locator("#validity-table tbody tr").count() >= 2
    assert w.page.locator("#reliability-table tbody tr").count() >= 1  # would an independent rerun agree?
    assert "(chosen)" in w.page.locator("#reliability-table").inner_text()
    assert "the recipe is the unit" in w.page.locator("#proposal").inner_text()
    assert "does not transfer" in w.page.locator("#transfer").inner_text() or "transfers" in \
        w.page.locator("#transfer").inner_text()  # fmt: skip
    assert w.traces("chart-transfer-0") >= 2  # the recipes, and the flipped pair as a red segment
    assert "Dialogue layer" in w.page.locator("#samples").inner_text()


def _click_second_recipe(w: Watched) -> str:
    before = w.traces("chart-curves")
    row = w.page.locator("#leaderboard-table tr.row").nth(1)
    recipe = row.get_attribute("data-recipe")
    row.click()
    w.page.wait_for_selector("#recipe-detail .detail")
    detail = w.page.locator("#recipe-detail").inner_text()
    assert recipe in detail and "rank 2" in detail and "Tale of the" in detail  # books shown by their titles
    assert "keep" in detail and "order" in detail
    assert w.traces("chart-recipe-curves") > 0
    assert "selected" in (row.get_attribute("class") or "")
    assert w.traces("chart-curves") >= before  # its trials join the curves section (if not there already)
    return recipe


def test_report_file_in_chromium(browser, campaign, tmp_path):
    out = build_report(campaign, tmp_path / "report.html")
    w = Watched(browser, "file://")
    w.open(out.as_uri())
    _check_full_page(w)
    _click_second_recipe(w)
    shot = tmp_path / "report.png"
    w.page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    w.check_clean()
    w.page.close()


def test_served_page_refreshes_while_the_campaign_runs(browser, campaign_copy, serving, tmp_path):
    server = serving(campaign_copy, interval_ms=300, min_interval=0.0)
    w = Watched(browser, server.url)
    w.open(server.url)
    _check_full_page(w)
    recipe = _click_second_recipe(w)
    completed = int(w.page.locator("#overview .card.good .v").inner_text())

    tid = complete_one_pending(campaign_copy, objective=0.25)  # a new best trial arrives while the page is open
    # the driver writes 'running' then 'completed': the page may refresh in between, so wait for the result itself
    w.page.wait_for_function(
        f"document.querySelector('#overview .card.good .v').textContent === '{completed + 1}'", timeout=20_000
    )
    assert int(w.page.locator("body").get_attribute("data-rendered")) >= 2
    first = w.page.locator("#leaderboard-table tr.row").first.get_attribute("data-recipe")
    with Store(campaign_copy / "campaign.sqlite", readonly=True) as store:
        assert store.trial(tid)["recipe_id"] == first
    assert recipe in w.page.locator("#recipe-detail").inner_text()  # the user's pick survives the refresh
    w.page.screenshot(path=str(tmp_path / "served.png"), full_page=True)
    w.check_clean()
    w.page.close()


def test_empty_campaign_renders_without_errors(browser, tmp_path):
    c = tmp_path / "fresh"
    Store(c / "campaign.sqlite").close()
    out = build_report(Path(c))
    w = Watched(browser, "file://")
    w.open(out.as_uri())
    for s in SECTIONS:
        assert w.page.locator(f"#{s} .body").inner_text().strip()
    assert "No recipe has been planned yet." in w.page.locator("#leaderboard").inner_text()
    assert "No trial has finished yet." in w.page.locator("#overview").inner_text()
    assert w.traces("chart-states") == 1  # the state counts still draw (all zero)
    w.check_clean()
    w.page.close()
