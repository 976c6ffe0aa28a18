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
from taxmatch.charts import Bar, bar_chart, column_chart, top_rows
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
    "report_charts",
    "write_report",
]

COUNTS_FILENAME = "counts.csv"
DISCLOSURES_FILENAME = "disclosures.csv"
HTML_FILENAME = "report.html"
NO_STATUTE = "(none cited)"
# The HTML page is a summary: bounded whatever the period holds. The CSV files have every row.
MAX_DAYS_CHARTED = 62  # a longer period is charted by month
CHART_ROWS = 12  # bars per chart; the rest are one "other" bar
TABLE_ROWS = 100  # rows per summary table; the rest are one "other" row (all in counts.csv)
DETAIL_ROWS = 200  # disclosures listed on the page (all in disclosures.csv)


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
    daily: tuple[tuple[str, str, int], ...] = ()  # (UTC day YYYY-MM-DD, outcome, entries), sorted

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

    def over_time(self) -> tuple[str, dict[str, dict[str, int]]]:
        """Entries per outcome by day, or by month (YYYY-MM) when the period is longer than two months."""
        monthly = (self.date_to - self.date_from).days > MAX_DAYS_CHARTED
        unit = "month" if monthly else "day"
        # Every day (or month) of the period has its column, those without entries too.
        periods: dict[str, dict[str, int]] = {}
        moment = self.date_from
        while moment <= self.date_to:
            periods.setdefault(moment.isoformat()[:7] if monthly else moment.isoformat(), {})
            moment += timedelta(days=1)
        for day, outcome, count in self.daily:
            label = day[:7] if monthly else day
            per_outcome = periods.setdefault(label, {})
            per_outcome[outcome] = per_outcome.get(outcome, 0) + count
        return unit, periods


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
    daily = tuple(
        (str(day), str(outcome), int(count))
        for day, outcome, count in ledger.con.execute(
            f"SELECT substr(recorded_at, 1, 10) AS day, outcome, count(*) FROM {ENTRIES_TABLE} WHERE {where} "
            "GROUP BY day, outcome ORDER BY day, outcome",
            parameters,
        ).fetchall()
    )

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
    return DisclosureReport(date_from, date_to, agency, generated_at, seq, head, counts, taxpayers, daily)


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
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #111; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 0.9em; word-break: break-all; }
table.detail { width: 100%; font-size: 0.85em; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: 0.5em 1em; }
.note { color: #555; }
svg.chart { max-width: 640px; display: block; }
svg.chart text { font-size: 12px; fill: #111; }
svg.chart line.axis { stroke: #888; }
rect.neutral { fill: #1f5f99; }
rect.DISCLOSED { fill: #2e7d32; } rect.REJECTED { fill: #b3261e; } rect.NOT_MATCHED { fill: #8a6d00; }
rect.PURGED { fill: #666; }
"""
_OUTCOME_ORDER = ("DISCLOSED", "REJECTED", "NOT_MATCHED")


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset(), css_class: str = ""
) -> str:
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
    opening = f'<table class="{css_class}">' if css_class else "<table>"
    return f"{opening}\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def _outcome_class(name: str) -> str:
    return name if name in (*_OUTCOME_ORDER, "PURGED") else "neutral"


def report_charts(report: DisclosureReport) -> dict[str, str]:
    """The report's charts as inline SVG: by outcome, agency, statute, and day or month (also on /ui/ledger)."""
    outcomes = report.total_by("outcome")
    ordered = [name for name in _OUTCOME_ORDER if name in outcomes] + [n for n in outcomes if n not in _OUTCOME_ORDER]
    unit, periods = report.over_time()
    series = [*_OUTCOME_ORDER, *sorted({o for counts in periods.values() for o in counts} - set(_OUTCOME_ORDER))]
    return {
        "outcome": bar_chart(
            [Bar(name, outcomes[name], _outcome_class(name)) for name in ordered], "Entries by outcome"
        ),
        "agency": bar_chart(
            [Bar(name, count) for name, count in top_rows(report.total_by("agency"), CHART_ROWS, "other agencies")],
            "Entries by agency",
        ),
        "statute": bar_chart(
            [Bar(name, count) for name, count in top_rows(report.total_by("statute"), CHART_ROWS, "other statutes")],
            "Entries by statute",
            label_width=180,
        ),
        "time": column_chart(
            list(periods.items()), series, f"Entries by {unit}", label_every=max(1, -(-len(periods) // 8))
        ),
        "time_unit": unit,
    }


def _totals_table(key: str, report: DisclosureReport) -> str:
    rows = top_rows(report.total_by(key), TABLE_ROWS, "other")
    return _table([key, "entries"], [[name, f"{count:,}"] for name, count in rows], frozenset({1}))


def render_html(report: DisclosureReport) -> str:
    """One self-contained page, summary first (inline style and SVG charts, no scripts, no external
    assets; TINs masked). Its size is bounded whatever the period holds: the long lists are cut to
    their largest rows and the first disclosures, and the CSV files beside it have every row."""
    scope = f"agency {report.agency}" if report.agency is not None else "all agencies"
    title = f"Accounting of disclosures {report.date_from} to {report.date_to} ({scope})"
    charts = report_charts(report)
    parts = [
        "<!DOCTYPE html>\n",
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n",
        f"<h1>{html.escape(title)}</h1>\n",
        f"<p><strong>{report.entries:,} entries, {report.disclosure_count:,} disclosures "
        f"about {len(report.taxpayers):,} taxpayers.</strong></p>\n",
        '<p class="note">Entries recorded (UTC) on the days from '
        f"{html.escape(report.date_from.isoformat())} to {html.escape(report.date_to.isoformat())}, inclusive. "
        f"Generated {html.escape(report.generated_at)} from the ledger through entry {report.ledger_seq} "
        f"(head <code>{html.escape(report.ledger_head)}</code>; check it with "
        "<code>taxmatch ledger verify</code>). Taxpayer TINs are masked to the last 4 digits; every count is "
        f"in {html.escape(COUNTS_FILENAME)} and every disclosure, with the full TIN, in "
        f"{html.escape(DISCLOSURES_FILENAME)} beside this page.</p>\n",
        '<div class="grid">\n',
        f'<section class="card"><h2>By outcome</h2>{charts["outcome"]}</section>\n',
        f'<section class="card"><h2>By {charts["time_unit"]}</h2>{charts["time"]}</section>\n',
        f'<section class="card"><h2>By agency</h2>{charts["agency"]}</section>\n',
        f'<section class="card"><h2>By statute</h2>{charts["statute"]}</section>\n',
        "</div>\n",
    ]
    for key, label in (("agency", "By agency"), ("statute", "By statute"), ("outcome", "By outcome")):
        parts.append(f"<h2>{label}</h2>\n")
        parts.append(_totals_table(key, report))
    parts.append("<h2>By agency, statute and outcome</h2>\n")
    largest = sorted(report.counts, key=lambda row: -row.count)[:TABLE_ROWS]
    shown = [row for row in report.counts if row in set(largest)]
    if len(shown) < len(report.counts):
        parts.append(
            f'<p class="note">The {len(shown):,} largest of {len(report.counts):,} rows; '
            f"all are in {html.escape(COUNTS_FILENAME)}.</p>\n"
        )
    parts.append(
        _table(
            ["agency", "statute", "outcome", "entries"],
            [[row.agency, row.statute, row.outcome, f"{row.count:,}"] for row in shown],
            frozenset({3}),
        )
    )
    parts.append("<h2>Disclosures</h2>\n")
    if not report.taxpayers:
        parts.append("<p>No disclosures in this period.</p>\n")
    else:
        listed = [(taxpayer.taxpayer_tin, item) for taxpayer in report.taxpayers for item in taxpayer.disclosures][
            :DETAIL_ROWS
        ]
        if report.disclosure_count > len(listed):
            parts.append(
                f'<p class="note">The first {len(listed):,} of {report.disclosure_count:,} disclosures, by taxpayer; '
                f"all are in {html.escape(DISCLOSURES_FILENAME)}.</p>\n"
            )
        # The fields disclosed are usually the policy's, the same for every row: said once, not per row.
        field_sets = {item.fields_disclosed for _, item in listed}
        per_row = len(field_sets) > 1
        if not per_row:
            parts.append(f'<p class="note">Fields disclosed: {html.escape(", ".join(field_sets.pop()))}.</p>\n')
        header = ["taxpayer", "recorded at", "agency", "batch", "request", "statute", "legal basis"]
        parts.append(
            _table(
                [*header, *(["fields"] if per_row else []), "entry"],
                [
                    [
                        mask_tin(tin),
                        item.recorded_at,
                        item.agency,
                        item.batch_id,
                        item.request_id,
                        item.statute,
                        item.legal_basis,
                        *([", ".join(item.fields_disclosed)] if per_row else []),
                        str(item.seq),
                    ]
                    for tin, item in listed
                ],
                frozenset({len(header) + int(per_row)}),
                "detail",
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
