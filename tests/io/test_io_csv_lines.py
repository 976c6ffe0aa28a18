"""The one-line CSV rule, fuzzed over both readers (issue 13): stray quotes, line breaks and commas
dropped into random fields. Every physical line is accounted for, nothing is merged, and exactly the
lines the rule calls broken are the rejected ones.

The oracle is written apart from the readers: a regular expression for one RFC 4180 line whose
quoted fields hold no line break, where (as in the csv module) a quote inside an unquoted field is
a character.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taxmatch.io import master
from taxmatch.io.csv_lines import QuoteProblem, quote_problem, split_line
from taxmatch.io.master import MASTER_COLUMNS, MasterRowProblem, read_master
from taxmatch.io.requests import read_requests, read_requests_from_text
from taxmatch.records import REQUEST_COLUMNS, MalformedRecord, RequestRecord

# Bounded so the suite stays fast; TAXMATCH_FUZZ_EXAMPLES=5000 runs a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("TAXMATCH_FUZZ_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_FIELD = r'(?:"(?:[^"]|"")*"|(?:[^",][^,]*)?)'
_LINE = re.compile(rf"{_FIELD}(?:,{_FIELD})*")
_FIELD_AT = re.compile(r'"((?:[^"]|"")*)"(?=,|$)|([^,]*)')
NOISE = ['"', "\n", "\r", ",", '"X', '""']


def oracle_fields(line: str) -> list[str] | None:
    """The fields of one physical line (its LF or CRLF removed), or None if the rule rejects it."""
    if "\r" in line or not line.strip() or not _LINE.fullmatch(line):
        return None
    fields: list[str] = []
    position = 0
    while True:
        match = _FIELD_AT.match(line, position)
        assert match is not None
        quoted, plain = match.groups()
        fields.append(quoted.replace('""', '"') if quoted is not None else plain)
        position = match.end()
        if position >= len(line):
            return fields
        position += 1  # the comma
        if position == len(line):
            fields.append("")
            return fields


def physical_lines(text: str) -> list[str]:
    """Lines as split on LF, each without its LF or CRLF ending; line 1 is the header."""
    pieces = text.split("\n")
    if pieces[-1] == "":
        pieces.pop()
    return [piece.removesuffix("\r") for piece in pieces]


@dataclass(frozen=True)
class Damage:
    field: int  # which field of the row
    noise: str  # what is dropped into it
    at: float  # where, as a share of the field's length


@dataclass(frozen=True)
class Row:
    values: tuple[str, ...]
    wrapped: frozenset[int]  # fields written in quotes (legal: commas and doubled quotes inside)
    damage: tuple[Damage, ...]

    def line(self) -> str:
        fields: list[str] = []
        for index, value in enumerate(self.values):
            text = '"' + value.replace('"', '""') + '"' if index in self.wrapped else value
            for damage in self.damage:
                if damage.field == index:
                    cut = round(damage.at * len(text))
                    text = text[:cut] + damage.noise + text[cut:]
            fields.append(text)
        return ",".join(fields) + "\n"


_LETTERS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ ", min_size=1, max_size=8).map(lambda text: "Q" + text)


@st.composite
def master_rows(draw: st.DrawFn) -> Row:
    values = (
        draw(st.from_regex(r"[0-9]{9}", fullmatch=True)),
        "2024",
        draw(st.sampled_from(["primary", "spouse"])),
        draw(_LETTERS),
        draw(st.sampled_from(["", "J"])),
        draw(_LETTERS),
        "",
        "1980-01-02",
        draw(_LETTERS.map(lambda name: "12 " + name)),
        draw(st.sampled_from(["", "APT 2"])),
        draw(_LETTERS),
        "NV",
        "89501",
        "",
    )
    return _with_quoting_and_damage(draw, values)


@st.composite
def request_rows(draw: st.DrawFn) -> Row:
    values = tuple(
        draw(st.from_regex(r"RQ[0-9]{4}", fullmatch=True)) if column == "request_id" else draw(_LETTERS)
        for column in REQUEST_COLUMNS
    )
    return _with_quoting_and_damage(draw, values)


def _with_quoting_and_damage(draw: st.DrawFn, values: tuple[str, ...]) -> Row:
    width = len(values)
    wrapped = draw(st.frozensets(st.integers(0, width - 1), max_size=3))
    damaged = draw(st.booleans())
    damage = draw(
        st.lists(
            st.builds(Damage, st.integers(0, width - 1), st.sampled_from(NOISE), st.floats(0, 1)),
            min_size=1,
            max_size=3,
        )
        if damaged
        else st.just([])
    )
    return Row(values, wrapped, tuple(damage))


def expected_lines(header: str, rows: list[Row]) -> dict[int, tuple[str, ...]]:
    """line number -> the values of each undamaged row: it must be read there, exactly."""
    expected: dict[int, tuple[str, ...]] = {}
    number = header.count("\n")
    for row in rows:
        line = row.line()
        if not row.damage:
            expected[number + 1] = row.values
        number += line.count("\n")
    return expected


# ---- the master reader -------------------------------------------------------------------------

MASTER_HEADER = ",".join(MASTER_COLUMNS) + "\n"


def _master_outcome(path: Path, *, line_reader: bool) -> tuple[dict[int, tuple[str, ...]], list[MasterRowProblem]]:
    problems: list[MasterRowProblem] = []
    if line_reader:
        tables = list(master._read_lines(path, problems.append, lambda _: None))
    else:
        tables = list(read_master(path, problems.append))
    read: dict[int, tuple[str, ...]] = {}
    for table in tables:
        for row in table.to_pylist():
            assert row["source_line"] not in read, "a line read twice"
            read[row["source_line"]] = tuple(row[column] for column in MASTER_COLUMNS)
    return read, problems


@FUZZ
@given(st.lists(master_rows(), min_size=1, max_size=25))
def test_master_reader_accounts_for_every_line_and_merges_none(rows: list[Row]) -> None:
    text = MASTER_HEADER + "".join(row.line() for row in rows)
    lines = physical_lines(text)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "master.csv"
        path.write_text(text, encoding="utf-8")
        read, problems = _master_outcome(path, line_reader=False)
        # Arrow's path (files without quotes, CRs or blank lines) and the line reader agree.
        assert (read, problems) == _master_outcome(path, line_reader=True)
    rejected = [problem.line for problem in problems]
    # Every physical line after the header exactly once: read or rejected.
    assert sorted([*read, *rejected]) == list(range(2, len(lines) + 1))
    # Exactly the lines the rule calls broken are rejected, and each read row is its own line's fields.
    for number, line in enumerate(lines[1:], start=2):
        fields = oracle_fields(line)
        if fields is None or len(fields) != len(MASTER_COLUMNS):
            assert number in rejected, (number, line)
        elif any('"' in field for field in fields):
            # A quote left in a value (`JOHN"X`, an escaped `""`) is what a stray quote leaves behind.
            (problem,) = [problem.problem for problem in problems if problem.line == number]
            assert problem.endswith(" holds a quote or a line break"), (number, line)
        else:
            assert read[number] == tuple(fields), (number, line)
    for number, values in expected_lines(MASTER_HEADER, rows).items():
        if not any('"' in value for value in values):
            assert read[number] == values
    assert not any('"' in value or "\n" in value or "\r" in value for values in read.values() for value in values)


# ---- the request readers -----------------------------------------------------------------------

REQUEST_HEADER = ",".join(REQUEST_COLUMNS) + "\n"


@FUZZ
@given(st.lists(request_rows(), min_size=1, max_size=25))
def test_request_csv_reader_gives_every_line_one_record_and_merges_none(rows: list[Row]) -> None:
    text = REQUEST_HEADER + "".join(row.line() for row in rows)
    lines = physical_lines(text)
    records = list(read_requests_from_text(text.encode("utf-8"), "csv"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "requests.csv"
        path.write_text(text, encoding="utf-8")
        assert list(read_requests(path)) == records
    assert list(read_requests_from_text(text, "csv")) == records
    by_line = {record.source_line: record for record in records}
    assert len(by_line) == len(records), "two records from one line"
    # Every non-blank physical line after the header has exactly one record; a blank line none.
    assert sorted(by_line) == [number for number, line in enumerate(lines, start=1) if number > 1 and line.strip()]
    for number, record in by_line.items():
        fields = oracle_fields(lines[number - 1])
        if fields is None or len(fields) != len(REQUEST_COLUMNS):
            assert isinstance(record, MalformedRecord), (number, lines[number - 1])
            assert record.problem.startswith(f"line {number}: ")
        elif not fields[0].strip():
            assert record == MalformedRecord(None, number, "request_id is missing")
        else:
            assert isinstance(record, RequestRecord), (number, lines[number - 1], record)
            got = tuple(getattr(record, column) for column in REQUEST_COLUMNS)
            assert got == tuple(field.strip() or None for field in fields)
    for number, values in expected_lines(REQUEST_HEADER, rows).items():
        record = by_line[number]
        assert isinstance(record, RequestRecord)
        assert tuple(getattr(record, column) for column in REQUEST_COLUMNS) == tuple(v.strip() or None for v in values)


@st.composite
def ndjson_lines(draw: st.DrawFn) -> tuple[str, bool]:
    """(one serialized request with its newline, whether it was left intact)."""
    row = draw(request_rows())
    line = json.dumps(dict(zip(REQUEST_COLUMNS, row.values, strict=True)))
    if not row.damage:
        return line + "\n", True
    for damage in row.damage:
        cut = round(damage.at * len(line))
        line = line[:cut] + draw(st.sampled_from([*NOISE, "{", "}", "\\", ":"])) + line[cut:]
    return line + "\n", False


@FUZZ
@given(st.lists(ndjson_lines(), min_size=1, max_size=25).filter(lambda lines: any(intact for _, intact in lines)))
def test_ndjson_reader_gives_every_line_one_record(items: list[tuple[str, bool]]) -> None:
    text = "".join(line for line, _ in items)
    lines = physical_lines(text)
    records = list(read_requests_from_text(text.encode("utf-8"), "ndjson"))
    by_line = {record.source_line: record for record in records}
    assert len(by_line) == len(records)
    assert sorted(by_line) == [number for number, line in enumerate(lines, start=1) if line.strip()]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            assert isinstance(by_line[number], MalformedRecord), (number, line)
    number = 0
    for line, intact in items:
        if intact:
            record = by_line[number + 1]
            assert isinstance(record, RequestRecord) and record.request_id == json.loads(line)["request_id"]
        number += line.count("\n")


# ---- the rule itself ---------------------------------------------------------------------------


@FUZZ
@given(st.lists(st.text(alphabet='ab ,"', max_size=6), min_size=1, max_size=6))
def test_split_line_and_quote_problem_agree_with_the_oracle(pieces: list[str]) -> None:
    line = ",".join(pieces)
    expected = oracle_fields(line) if line.strip() else line.split(",")
    assert split_line(line) == expected
    assert (quote_problem(line) is None) == (expected is not None)


def test_quote_problem_names_the_field_and_the_fault() -> None:
    assert quote_problem('a,"b,c') == QuoteProblem(1, "quote not closed before the end of the line")
    assert quote_problem('a,b,"c"d') == QuoteProblem(2, "text after the closing quote")
    assert quote_problem('a,"b ""x"", c",d') is None
    assert quote_problem('a,O"Brien') is None
