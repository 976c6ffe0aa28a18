"""The accounting of disclosures over a period (`taxmatch ledger report`, docs/ledger.md).

`build_report` is pure: it reads the ledger through a connection and returns a
`DisclosureReport`; it writes nothing. `write_report` renders it to files:

* ``counts.csv``: entries per (agency, statute, outcome) in the period;
* ``disclosures.csv``: every disclosure per taxpayer, with the **full TIN**: it is for the
  accounting office, which must answer a taxpayer's request for the accounting of the
  disclosures of *their* return and so must find them by TIN (26 U.S.C. 6103(p)(3));
* ``report.html``: the same, readable and self-contained, TINs masked to the last 4.

Period: entries whose ``recorded_at`` (UTC) falls on a day from ``date_from`` to
``date_to``, both inclusive. Counts group the statute by its canonical citation
(``8 U.S.C. 1326``) when it parses, else by the text as cited, so that one statute
written three ways is one row; the per-taxpayer list keeps the text as cited.
"""

from __future__ import annotations

import csv
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from taxmatch.agency import agency_key, agency_key_sql
from taxmatch.io.outcomes import spreadsheet_safe
from taxmatch.ledger.model import system_clock, utc_timestamp
from taxmatch.ledger.store import ENTRIES_TABLE, Ledger
from taxmatch.records import Outcome
from taxmatch.validate.statutes import parse_statute

__all__ = [
    "COUNTS_FILENAME",
    "DISCLOSURES_FILENAME",
    "HTML_FILENAME",
    "CountRow",
    "Disclosure",
    "DisclosureReport",
    "ReportFiles",
    "TaxpayerDisclosures",
    "build_report",
    "default_report_dir",
    "mask_tin",
    "render_counts_csv",
    "render_disclosures_csv",
    "render_html",
    "write_report",
]

COUNTS_FILENAME = "counts.csv"
DISCLOSURES_FILENAME = "disclosures.csv"
HTML_FILENAME = "report.html"
NO_STATUTE = "(none cited)"


@dataclass(frozen=True)
class CountRow:
    agency: str
    statute: str  # canonical citation when it parses, else as cited; NO_STATUTE for ""
    outcome: str
    count: int


@dataclass(frozen=True)
class Disclosure:
    """One DISCLOSED ledger entry; ``seq`` and ``entry_hash`` tie it to the verifiable ledger."""

    seq: int
    recorded_at: str
    agency: str
    actor: str
    batch_id: str
    request_id: str
    statute: str  # as cited in the request
    legal_basis: str
    fields_disclosed: tuple[str, ...]
    entry_hash: str


@dataclass(frozen=True)
class TaxpayerDisclosures:
    taxpayer_tin: str
    disclosures: tuple[Disclosure, ...]


@dataclass(frozen=True)
class DisclosureReport:
    date_from: date
    date_to: date
    agency: str | None
    generated_at: str
    ledger_seq: int  # the ledger's head when the report was read: the state it accounts for
    ledger_head: str
    counts: tuple[CountRow, ...]  # sorted by agency, statute, outcome
    taxpayers: tuple[TaxpayerDisclosures, ...]  # sorted by TIN; disclosures by seq

    @property
    def entries(self) -> int:
        return sum(row.count for row in self.counts)

    def total_by(self, key: str) -> dict[str, int]:
        """Totals per ``agency``, ``statute`` or ``outcome``, sorted by that key."""
        if key not in ("agency", "statute", "outcome"):
            raise ValueError(f"cannot total by {key!r}")
        totals: dict[str, int] = {}
        for row in self.counts:
            name = str(getattr(row, key))
            totals[name] = totals.get(name, 0) + row.count
        return dict(sorted(totals.items()))

    @property
    def disclosure_count(self) -> int:
        return sum(len(taxpayer.disclosures) for taxpayer in self.taxpayers)


def _statute_group(text: str) -> str:
    cited = text.strip()
    if not cited:
        return NO_STATUTE
    return parse_statute(cited) or cited


def build_report(
    con: duckdb.DuckDBPyConnection | Ledger,
    date_from: date,
    date_to: date,
    *,
    agency: str | None = None,
    now: datetime | None = None,
) -> DisclosureReport:
    """The accounting of the entries recorded from ``date_from`` to ``date_to`` (UTC days, inclusive).

    ``agency`` keeps only that agency's entries (in any letter case: ``ice`` is ``ICE``). Reads only;
    the caller's connection may be read-only.
    """
    if date_to < date_from:
        raise ValueError(f"the period ends ({date_to}) before it starts ({date_from})")
    ledger = con if isinstance(con, Ledger) else Ledger(con)
    seq, head = ledger.head()
    generated_at = utc_timestamp(now or system_clock())
    if seq == 0:
        return DisclosureReport(date_from, date_to, agency, generated_at, 0, head, (), ())
    # recorded_at is fixed-width ISO text in UTC, so a day range is a text range: from the
    # first day's date up to (not including) the day after the last.
    where = "recorded_at >= ? AND recorded_at < ?"
    parameters: list[object] = [date_from.isoformat(), (date_to + timedelta(days=1)).isoformat()]
    if agency is not None:
        where += f" AND {agency_key_sql('agency')} = ?"
        parameters.append(agency_key(agency))
    # Only entries up to the head read above: one consistent state even if a writer appends.
    where += " AND seq <= ?"
    parameters.append(seq)
    grouped: dict[tuple[str, str, str], int] = {}
    for row_agency, statute, outcome, count in ledger.con.execute(
        f"SELECT agency, statute, outcome, count(*) FROM {ENTRIES_TABLE} WHERE {where} "
        "GROUP BY agency, statute, outcome",
        parameters,
    ).fetchall():
        key = (str(row_agency), _statute_group(str(statute)), str(outcome))
        grouped[key] = grouped.get(key, 0) + int(count)
    counts = tuple(CountRow(a, s, o, n) for (a, s, o), n in sorted(grouped.items()))

    by_tin: dict[str, list[Disclosure]] = {}
    for row in ledger.con.execute(
        "SELECT taxpayer_tin, seq, recorded_at, agency, actor, batch_id, request_id, statute, legal_basis, "
        f"fields_disclosed, entry_hash FROM {ENTRIES_TABLE} WHERE {where} AND outcome = ? ORDER BY taxpayer_tin, seq",
        [*parameters, Outcome.DISCLOSED.value],
    ).fetchall():
        by_tin.setdefault(str(row[0]), []).append(
            Disclosure(
                int(row[1]),
                str(row[2]),
                str(row[3]),
                str(row[4]),
                str(row[5]),
                str(row[6]),
                str(row[7]),
                str(row[8]),
                tuple(str(name) for name in row[9]),
                str(row[10]),
            )
        )
    taxpayers = tuple(TaxpayerDisclosures(tin, tuple(items)) for tin, items in by_tin.items())
    return DisclosureReport(date_from, date_to, agency, generated_at, seq, head, counts, taxpayers)


def monthly_counts(con: duckdb.DuckDBPyConnection | Ledger, date_from: date, date_to: date) -> dict[str, int]:
    """Entries per month (YYYY-MM, UTC) recorded from ``date_from`` to ``date_to``, both inclusive."""
    ledger = con if isinstance(con, Ledger) else Ledger(con)
    if ledger.head()[0] == 0:
        return {}
    rows = ledger.con.execute(
        f"SELECT substr(recorded_at, 1, 7) AS month, count(*) FROM {ENTRIES_TABLE} "
        "WHERE recorded_at >= ? AND recorded_at < ? GROUP BY month ORDER BY month",
        [date_from.isoformat(), (date_to + timedelta(days=1)).isoformat()],
    ).fetchall()
    return {str(month): int(count) for month, count in rows}


# ---- rendering ------------------------------------------------------------------------------------


def mask_tin(tin: str) -> str:
    """``*****6789``: enough to tell taxpayers apart on a page, not enough to identify one."""
    digits = tin.strip()
    return "*****" + digits[-4:] if len(digits) > 4 else "*" * len(digits)


def _csv(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    # Agency, statute and request ids come from requesters: no cell may run as a formula.
    writer.writerows([[spreadsheet_safe(value) for value in row] for row in rows])
    return buffer.getvalue()


def render_counts_csv(report: DisclosureReport) -> str:
    rows = [["agency", "statute", "outcome", "count"]]
    rows += [[row.agency, row.statute, row.outcome, str(row.count)] for row in report.counts]
    return _csv(rows)


def render_disclosures_csv(report: DisclosureReport) -> str:
    rows = [
        [
            "taxpayer_tin",
            "recorded_at",
            "agency",
            "actor",
            "batch_id",
            "request_id",
            "statute",
            "legal_basis",
            "fields_disclosed",
            "ledger_seq",
            "entry_hash",
        ]
    ]
    for taxpayer in report.taxpayers:
        for item in taxpayer.disclosures:
            rows.append(
                [
                    taxpayer.taxpayer_tin,
                    item.recorded_at,
                    item.agency,
                    item.actor,
                    item.batch_id,
                    item.request_id,
                    item.statute,
                    item.legal_basis,
                    ";".join(item.fields_disclosed),
                    str(item.seq),
                    item.entry_hash,
                ]
            )
    return _csv(rows)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #111; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 0.9em; }
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    # Every value is escaped: agency names, statutes and request ids are requester-supplied text.
    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{html.escape(value)}</td>' if i in numeric else f"<td>{html.escape(value)}</td>"
            for i, value in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def render_html(report: DisclosureReport) -> str:
    """One self-contained page (inline style, no scripts, no external assets); TINs masked."""
    scope = f"agency {report.agency}" if report.agency is not None else "all agencies"
    title = f"Accounting of disclosures {report.date_from} to {report.date_to} ({scope})"
    parts = [
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n",
        f"<h1>{html.escape(title)}</h1>\n",
        "<p>Entries recorded (UTC) on the days from "
        f"{html.escape(report.date_from.isoformat())} to {html.escape(report.date_to.isoformat())}, inclusive. "
        f"Generated {html.escape(report.generated_at)} from the ledger through entry {report.ledger_seq} "
        f"(head <code>{html.escape(report.ledger_head)}</code>; check it with "
        "<code>taxmatch ledger verify</code>). Taxpayer TINs are masked to the last 4 digits; the full "
        f"TINs are in {html.escape(DISCLOSURES_FILENAME)}.</p>\n",
        f"<p>{report.entries} entries, {report.disclosure_count} disclosures "
        f"about {len(report.taxpayers)} taxpayers.</p>\n",
    ]
    for key, label in (("agency", "By agency"), ("statute", "By statute"), ("outcome", "By outcome")):
        totals = report.total_by(key)
        parts.append(f"<h2>{label}</h2>\n")
        parts.append(_table([key, "entries"], [[name, str(n)] for name, n in totals.items()], frozenset({1})))
    parts.append("<h2>By agency, statute and outcome</h2>\n")
    parts.append(
        _table(
            ["agency", "statute", "outcome", "entries"],
            [[row.agency, row.statute, row.outcome, str(row.count)] for row in report.counts],
            frozenset({3}),
        )
    )
    parts.append("<h2>Disclosures per taxpayer</h2>\n")
    if not report.taxpayers:
        parts.append("<p>No disclosures in this period.</p>\n")
    for taxpayer in report.taxpayers:
        count = len(taxpayer.disclosures)
        parts.append(f"<h3>Taxpayer {html.escape(mask_tin(taxpayer.taxpayer_tin))} ({count})</h3>\n")
        parts.append(
            _table(
                ["recorded at", "agency", "batch", "request", "statute", "legal basis", "fields", "entry"],
                [
                    [
                        item.recorded_at,
                        item.agency,
                        item.batch_id,
                        item.request_id,
                        item.statute,
                        item.legal_basis,
                        ", ".join(item.fields_disclosed),
                        str(item.seq),
                    ]
                    for item in taxpayer.disclosures
                ],
                frozenset({7}),
            )
        )
    parts.append("</body>\n</html>\n")
    return "".join(parts)


@dataclass(frozen=True)
class ReportFiles:
    directory: Path
    counts_csv: Path
    disclosures_csv: Path
    html: Path


def _safe_name(text: str) -> str:
    # An agency name becomes part of a directory name: no separators, no "..", nothing hidden.
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in text.strip())
    return cleaned.strip("-") or "agency"


def default_report_dir(home: Path, date_from: date, date_to: date, agency: str | None) -> Path:
    """``<home>/reports/<from>_<to>[_<agency>]``."""
    name = f"{date_from.isoformat()}_{date_to.isoformat()}"
    if agency is not None:
        name += f"_{_safe_name(agency)}"
    return home / "reports" / name


def _write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600: the files name taxpayers (the CSV by full TIN)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_report(report: DisclosureReport, out_dir: Path) -> ReportFiles:
    """Write counts.csv, disclosures.csv and report.html into ``out_dir`` (created 0700 if new)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = ReportFiles(out_dir, out_dir / COUNTS_FILENAME, out_dir / DISCLOSURES_FILENAME, out_dir / HTML_FILENAME)
    _write_private(files.counts_csv, render_counts_csv(report))
    _write_private(files.disclosures_csv, render_disclosures_csv(report))
    _write_private(files.html, render_html(report))
    return files
