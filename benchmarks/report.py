"""The accounting report of one day (issue: a 100k-request day under 2 MB of HTML, rendered in under 2 s).

Builds a synthetic master and one batch of M requests (or takes --data DIR), loads the master and
runs the batch with the CLI (the real ledger of a real day), then times `taxmatch ledger report`
for that day and opens its report.html in Chromium (Playwright driving the system's browser, as the
dashboard's tests do), each time in a fresh page: the render time is from navigation to the first
frame painted after the load event. Prints ONE JSON line. Example (quick run):

    python benchmarks/report.py --people 20000 --requests 5000
"""

from __future__ import annotations

import argparse
import datetime
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from _common import emit, ensure_data, git_commit, log, positive_int, run_step, workspace

AGENCY = "BENCH"
TARGET_BYTES = 2_000_000
TARGET_RENDER_MS = 2000.0
# Debian's binary itself (its /usr/bin/chromium is a shell wrapper), else whatever is on PATH.
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")


def chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        found = candidate if Path(candidate).exists() else shutil.which(candidate)
        if found:
            return found
    raise SystemExit("no Chromium on this machine (apt-get install chromium)")


def render_times_ms(page_path: Path, repeats: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                started = time.perf_counter()
                page.goto(page_path.as_uri(), wait_until="load")
                # The frame after load: layout and paint of the page as loaded are done.
                page.evaluate("() => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0)))")
                times.append((time.perf_counter() - started) * 1000)
                context.close()
        finally:
            browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=positive_int, default=200_000)
    parser.add_argument("--requests", type=positive_int, default=100_000)
    parser.add_argument("--data", type=Path, help="directory with a generated set (skips synth)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="page loads timed in Chromium")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()

    with workspace(args.keep, "taxmatch-report-") as space:
        data, meta, _ = ensure_data(space, args.data, args.people, args.requests, args.seed)
        run_step("master load", space.taxmatch("master", "load", str(data / "master.csv")), space.env)
        run_step("batch run", space.taxmatch("batch", "run", str(data / "requests.csv"), "--agency", AGENCY), space.env)
        # The entries carry the real UTC clock: the day is today's (and yesterday's, past midnight).
        today = datetime.datetime.now(datetime.UTC).date()
        first = (today - datetime.timedelta(days=1)).isoformat()
        out = space.root / "report"
        step = run_step(
            "ledger report",
            space.taxmatch("ledger", "report", "--from", first, "--to", today.isoformat(), "--out", str(out)),
            space.env,
        )
        page = out / "report.html"
        sizes = {path.name: path.stat().st_size for path in sorted(out.iterdir())}
        log(f"report: {step.stdout.strip()}; sizes {sizes}")
        times = render_times_ms(page, args.repeats)
        result: dict[str, Any] = {
            "benchmark": "report",
            "commit": git_commit(),
            "people": meta.get("people"),
            "requests": meta.get("requests"),
            "report_summary": step.stdout.strip().splitlines()[0],
            "report_seconds": round(step.seconds, 2),
            "report_peak_rss_mb": round(step.peak_rss_mb),
            "html_bytes": sizes["report.html"],
            "csv_bytes": {name: size for name, size in sizes.items() if name.endswith(".csv")},
            "render_ms": {
                "median": round(statistics.median(times), 1),
                "max": round(max(times), 1),
                "all": [round(value, 1) for value in times],
            },
            "target": {"html_bytes": TARGET_BYTES, "render_ms": TARGET_RENDER_MS},
        }
        result["target_met"] = result["html_bytes"] < TARGET_BYTES and max(times) < TARGET_RENDER_MS
        emit(result)


if __name__ == "__main__":
    main()
