"""The dashboard in a real browser: Playwright driving the system's Chromium (no downloaded browser).

Skipped where Playwright or Chromium is absent (`.ci/run` installs Chromium with apt-get where it can).
With TAXMATCH_SCREENSHOTS=DIR the pages are also saved there as PNG (docs/screenshots/ in the repo).
"""

from __future__ import annotations

import csv
import datetime
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_api import TAXMATCH, World, run, submit, world

__all__ = ["world"]  # the module-scoped server fixture of test_api, started again for this module

sync_api = pytest.importorskip("playwright.sync_api")
# Debian's binary itself (its /usr/bin/chromium is a shell wrapper), else whatever is on PATH.
_CANDIDATES = ("/usr/lib/chromium/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
CHROMIUM = next((path for path in _CANDIDATES if path and Path(path).exists()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")
SCREENSHOTS = os.environ.get("TAXMATCH_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def page_for(browser: Any, world: World, key: str, width: int = 1280) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    # Offline: the pages must need nothing but the server itself.
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(world.server.base_url)
                  else route.abort())  # fmt: skip
    page = context.new_page()
    page.goto(world.server.base_url + "/")
    assert page.url.endswith("/ui/login")
    page.fill("input[name=api_key]", world.keys[key])
    page.click("button[type=submit]")
    return page


def shot(page: Any, name: str, full_page: bool = True) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=full_page)


def test_requester_sees_a_batch_finish_and_reads_its_requests(world: World, browser: Any) -> None:
    page = page_for(browser, world, "ice_requester")
    assert page.url.endswith("/ui/batches")
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["taxmatch_session"]["httpOnly"] and cookies["taxmatch_session"]["sameSite"] == "Strict"
    body = (world.data / "requests.csv").read_bytes()
    batch_id = submit(world, "ice_requester", body).json()["batch_id"]
    page.goto(world.server.base_url + "/ui/batches")
    assert batch_id in page.content()
    world.wait_done(batch_id)
    page.reload()
    row = page.locator("tr", has_text=batch_id)
    assert "done" in row.inner_text()
    shot(page, "batches")
    page.click(f"text={batch_id}")
    for chart in ("outcomes", "reasons", "probability", "states", "tax-years"):
        assert page.locator(f"[data-chart={chart}] svg.chart rect").count() >= 1, chart
        assert page.locator(f"[data-chart={chart}] svg.chart").bounding_box()["width"] > 200, chart  # drawn, not empty
    assert page.locator("[data-reason]").count() >= 1
    shot(page, "batch")
    page.click("text=disclosed")
    disclosed_id = page.locator("td a").first.inner_text()
    page.click(f"text={disclosed_id}")
    assert page.locator("[data-outcome=DISCLOSED]").count() == 1
    assert page.locator("[data-probability]").inner_text() not in ("", "—")
    # The explanation, from how the batch decided it: candidates, their waterfalls, the rule, what was disclosed.
    assert "Candidate A (chosen)" in page.content() and "confident_match" in page.content()
    assert page.locator("svg.waterfall rect.total").count() >= 1
    assert "Disclosed from candidate A" in page.content()
    shot(page, "request-disclosed")
    page.go_back()
    page.goto(world.server.base_url + f"/ui/batches/{batch_id}?outcome=NOT_MATCHED")
    unmatched_id = page.locator("td a").first.inner_text()
    page.click(f"text={unmatched_id}")
    assert page.locator("[data-outcome=NOT_MATCHED]").count() == 1
    assert "Deciding rule" in page.content() and "unexplained" not in page.content()
    assert "Disclosed from candidate" not in page.content()
    shot(page, "request-unmatched")
    page.context.close()


def test_lookup_shows_the_explanation(world: World, browser: Any) -> None:
    page = page_for(browser, world, "ice_requester")
    disclosed = (world.expected_dir / "disclosed.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    rows = list(csv.DictReader((world.data / "requests.csv").read_text(encoding="utf-8").splitlines()))
    request = next(row for row in rows if row["request_id"] == disclosed)
    page.goto(world.server.base_url + "/ui/lookup")
    for name, value in request.items():
        if name != "request_id" and value and page.locator(f"input[name={name}]").count():
            page.fill(f"input[name={name}]", value)
    page.click("button.primary")
    assert page.locator("[data-outcome=DISCLOSED]").count() == 1
    assert "Candidate A (chosen)" in page.content() and "confident_match" in page.content()
    shot(page, "lookup-explanation")
    page.context.close()


def test_other_agency_and_wrong_role_are_refused(world: World, browser: Any) -> None:
    batch_id = submit(world, "ice_requester", (world.data / "requests.csv").read_bytes()[:2000]).json()["batch_id"]
    cbp = page_for(browser, world, "cbp_requester")
    assert batch_id not in cbp.content()
    answer = cbp.goto(world.server.base_url + f"/ui/batches/{batch_id}")
    assert answer is not None and answer.status == 404
    cbp.context.close()
    requester = page_for(browser, world, "ice_requester", width=390)  # a phone
    shot(requester, "batches-phone")
    answer = requester.goto(world.server.base_url + "/ui/ledger")
    assert answer is not None and answer.status == 403
    requester.context.close()
    auditor = page_for(browser, world, "ice_admin")
    auditor.goto(world.server.base_url + "/ui/ledger")
    assert auditor.locator("[data-ledger-ok=true]").count() == 1
    for chart in ("agency", "statute", "month", "outcome"):
        assert auditor.locator(f"[data-chart={chart}] svg.chart rect").count() >= 1, chart
    shot(auditor, "ledger")
    auditor.goto(world.server.base_url + "/ui/keys")
    shot(auditor, "keys")
    auditor.goto(world.server.base_url + "/ui/logout")  # a GET does not sign out
    auditor.goto(world.server.base_url + "/ui/batches")
    assert auditor.url.endswith("/ui/batches")
    auditor.click("text=Sign out")
    assert auditor.url.endswith("/ui/login")
    shot(auditor, "login")
    auditor.context.close()


def test_the_accounting_report_opens_summary_first_with_charts(world: World, browser: Any, tmp_path: Path) -> None:
    """`taxmatch ledger report` (through the running server): a page that needs nothing else to render."""
    today = datetime.datetime.now(datetime.UTC).date()
    first, last = (today - datetime.timedelta(days=1)).isoformat(), today.isoformat()
    run(TAXMATCH, "--home", str(world.home), "ledger", "report", "--from", first, "--to", last,
        "--out", str(tmp_path), env=world.env)  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page = context.new_page()
    page.goto((tmp_path / "report.html").as_uri())
    assert page.locator("h1").inner_text().startswith("Accounting of disclosures")
    assert page.locator("svg.chart").count() == 4
    assert page.locator("svg.chart rect.DISCLOSED").count() >= 1
    # The charts come before the first table.
    first_chart = page.locator("svg.chart").first.bounding_box()
    first_table = page.locator("table").first.bounding_box()
    assert first_chart is not None and first_table is not None and first_chart["y"] < first_table["y"]
    shot(page, "report", full_page=False)  # its summary: what the first screen shows
    context.close()
