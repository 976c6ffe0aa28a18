"""`taxmatch ledger report`: the accounting of disclosures, checked against real batch outputs."""

from __future__ import annotations

import csv
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxmatch import database
from taxmatch.cli import app
from taxmatch.ledger import Ledger, LedgerEvent
from taxmatch.ledger.report import build_report, mask_tin, render_counts_csv, render_disclosures_csv, render_html
from taxmatch.settings import Workspace
from taxmatch.synth import generate

AGENCIES = ("ICE", "HSI")
OUTCOME_FILES = {"DISCLOSED": "disclosed.csv", "REJECTED": "rejected.csv", "NOT_MATCHED": "unmatched.csv"}


@dataclass(frozen=True)
class Run:
    home: Path
    batches: dict[str, Path]  # agency -> batch directory


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One synth master, one request file run twice through the real CLI, once per agency."""
    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(base / "keys" / "db.key"))
        patch.delenv(database.DB_KEY_ENVIRONMENT_VARIABLE, raising=False)
        generate(base / "data", people=300, requests=120, seed=3, as_of=date(2026, 11, 25))
        home = base / "home"
        runner = CliRunner()
        result = runner.invoke(app, ["--home", str(home), "master", "load", str(base / "data" / "master.csv")])
        assert result.exit_code == 0, result.output
        batches: dict[str, Path] = {}
        for agency in AGENCIES:
            before = set((home / "batches").glob("*")) if (home / "batches").exists() else set()
            requests = str(base / "data" / "requests.csv")
            arguments = ["--home", str(home), "batch", "run", requests, "--agency", agency, "--as-of", "2026-11-25"]
            result = runner.invoke(app, arguments)
            assert result.exit_code == 0, result.output
            (new,) = set((home / "batches").glob("*")) - before
            batches[agency] = new
        yield Run(home, batches)


def period() -> tuple[str, str]:
    # Entries are stamped with the real UTC clock: a window around today survives midnight.
    today = datetime.now(UTC).date()
    return (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()


def invoke(run: Run, *args: str) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(run.home.parent / "keys" / "db.key"))
        result = CliRunner().invoke(app, ["--home", str(run.home), "ledger", "report", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_report_counts_equal_the_outcome_files(run: Run, tmp_path: Path) -> None:
    first, last = period()
    output = invoke(run, "--from", first, "--to", last, "--out", str(tmp_path / "all"))
    assert "240 entries" in output and str(tmp_path / "all") in output

    counts = csv_rows(tmp_path / "all" / "counts.csv")
    by_agency_outcome: dict[tuple[str, str], int] = {}
    for row in counts:
        key = (row["agency"], row["outcome"])
        by_agency_outcome[key] = by_agency_outcome.get(key, 0) + int(row["count"])
    for agency, directory in run.batches.items():
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["agency"] == agency
        for outcome, name in OUTCOME_FILES.items():
            rows = len(csv_rows(directory / name))
            assert by_agency_outcome.get((agency, outcome), 0) == rows, (agency, outcome)

    # Every disclosed row is in the per-taxpayer list, under the TIN whose last 4 it disclosed.
    disclosures = csv_rows(tmp_path / "all" / "disclosures.csv")
    for agency, directory in run.batches.items():
        listed = {row["request_id"]: row for row in disclosures if row["agency"] == agency}
        disclosed = csv_rows(directory / "disclosed.csv")
        assert len(listed) == len(disclosed) > 0
        for row in disclosed:
            entry = listed[row["request_id"]]
            assert entry["taxpayer_tin"].endswith(row["tin_last4"]) and len(entry["taxpayer_tin"]) == 9
            assert entry["batch_id"] == directory.name

    page = (tmp_path / "all" / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    some_tin = disclosures[0]["taxpayer_tin"]
    assert some_tin not in page and mask_tin(some_tin) in page
    for name in ("counts.csv", "disclosures.csv", "report.html"):
        assert stat.S_IMODE((tmp_path / "all" / name).stat().st_mode) == 0o600


def test_agency_filter_and_default_directory(run: Run) -> None:
    first, last = period()
    output = invoke(run, "--from", first, "--to", last, "--agency", "HSI")
    target = run.home / "reports" / f"{first}_{last}_HSI"
    assert str(target) in output
    counts = csv_rows(target / "counts.csv")
    assert {row["agency"] for row in counts} == {"HSI"}
    assert sum(int(row["count"]) for row in counts) == 120
    assert {row["agency"] for row in csv_rows(target / "disclosures.csv")} == {"HSI"}


def test_period_outside_the_entries_is_empty(run: Run, tmp_path: Path) -> None:
    output = invoke(run, "--from", "2001-01-01", "--to", "2001-12-31", "--out", str(tmp_path))
    assert output.startswith("0 entries, 0 disclosures")
    assert csv_rows(tmp_path / "counts.csv") == []
    assert "No disclosures in this period." in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_bad_dates_are_refused(run: Run) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(run.home.parent / "keys" / "db.key"))
        runner = CliRunner()
        result = runner.invoke(app, ["--home", str(run.home), "ledger", "report", "--from", "2026-13-01", "--to", "x"])
        assert result.exit_code == 1 and "not a date" in result.output
        reversed_ = ["--from", "2026-02-01", "--to", "2026-01-01"]
        result = runner.invoke(app, ["--home", str(run.home), "ledger", "report", *reversed_])
        assert result.exit_code == 1 and "before" in result.output


class StepClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_dates_are_inclusive_and_hostile_values_are_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(tmp_path / "keys" / "db.key"))
    con = database.connect(Workspace(tmp_path / "home"))
    clock = StepClock(datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    ledger = Ledger(con, clock=clock)
    hostile = '<script>alert("x")</script>&'
    for moment, agency in (
        (datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), "EARLY"),
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), hostile),
        (datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC), '=HYPERLINK("http://x")'),
        (datetime(2026, 4, 1, 0, 0, tzinfo=UTC), "LATE"),
    ):
        clock.now = moment
        ledger.append(
            [
                LedgerEvent(
                    agency=agency,
                    batch_id="b-1",
                    request_id=f"-{agency}",
                    outcome="DISCLOSED",
                    statute=f"8 USC 1326 {hostile}",
                    fields_disclosed=("tin_last4",),
                    taxpayer_tin="123456789",
                )
            ]
        )
    report = build_report(con, date(2026, 3, 1), date(2026, 3, 31))
    con.close()
    assert report.entries == 2
    assert set(report.total_by("agency")) == {hostile, '=HYPERLINK("http://x")'}
    (taxpayer,) = report.taxpayers
    assert len(taxpayer.disclosures) == 2

    page = render_html(report)
    assert hostile not in page and "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert "123456789" not in page and "*****6789" in page

    for text in (render_counts_csv(report), render_disclosures_csv(report)):
        for row in csv.reader(text.splitlines()):
            assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row
    assert "'=HYPERLINK" in render_counts_csv(report)
    assert "'-=HYPERLINK" in render_disclosures_csv(report)  # the request id "-=HYPERLINK..."


def test_the_page_is_a_summary_bounded_whatever_the_day_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Summary and charts first; the long lists cut to their largest rows and first disclosures (all in the CSVs)."""
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(tmp_path / "keys" / "db.key"))
    con = database.connect(Workspace(tmp_path / "home"))
    ledger = Ledger(con, clock=StepClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)))

    def events(count: int, start: int) -> list[LedgerEvent]:
        # Every rejected request cites a statute of its own: requesters' text, unbounded in kind.
        return [
            LedgerEvent(agency="ICE", batch_id="b-1", request_id=f"r{n}", outcome="DISCLOSED", statute="8 USC 1326",
                        fields_disclosed=("tin_last4",), taxpayer_tin=f"{100000000 + n}")
            if n % 2 else
            LedgerEvent(agency="ICE", batch_id="b-1", request_id=f"r{n}", outcome="REJECTED", statute=f"statute {n}",
                        reason_codes=("STATUTE_NOT_PERMITTED",))
            for n in range(start, start + count)
        ]  # fmt: skip

    ledger.append(events(1_000, 0))
    small = render_html(build_report(con, date(2026, 3, 1), date(2026, 3, 1)))
    ledger.append(events(3_000, 1_000))
    report = build_report(con, date(2026, 3, 1), date(2026, 3, 1))
    con.close()
    page = render_html(report)
    assert report.disclosure_count == 2_000 and len(report.counts) == 2_001
    # Four times the entries, about the same page: nothing on it grows with the day.
    assert len(page) < 1.1 * len(small) and len(page) < 120_000
    assert page.index("<svg") < page.index("<table")  # the charts come before any table
    assert page.count("<svg") == 4
    assert "The first 200 of 2,000 disclosures" in page and "The 100 largest of 2,001 rows" in page
    assert "other statutes (1,989)" in page  # the chart: the 12 largest statutes and one bar for the rest
    assert page.count("<tr>") < 500
    # The CSVs beside the page have every row.
    assert len(render_counts_csv(report).splitlines()) == 2_002
    assert len(render_disclosures_csv(report).splitlines()) == 2_001
