"""Request readers: every bad record costs exactly one MalformedRecord, never the file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taxmatch.io.requests import (
    RequestFileError,
    outcome_request_id,
    read_requests,
    read_requests_from_text,
)
from taxmatch.records import REQUEST_COLUMNS, Address, MalformedRecord, RequestRecord

HEADER = ",".join(REQUEST_COLUMNS)


def row(request_id: str, **overrides: str) -> dict[str, str]:
    values = {
        "request_id": request_id,
        "first_name": "Maria",
        "middle_name": "",
        "last_name": "Garcia Lopez",
        "suffix": "",
        "dob": "1980-03-04",
        "tin": "",
        "street": "12 Main St",
        "unit": "",
        "city": "Springfield",
        "state": "IL",
        "zip": "62704",
        "a_number": "A123456789",
        "removal_order_date": "2020-01-15",
        "statute": "8 U.S.C. 1326",
        "tax_years": "2019-2021",
    }
    values.update(overrides)
    return values


def csv_line(request_id: str, **overrides: str) -> str:
    return ",".join(row(request_id, **overrides)[column] for column in REQUEST_COLUMNS)


def write_csv(tmp_path: Path, body: str | bytes, name: str = "requests.csv") -> Path:
    path = tmp_path / name
    if isinstance(body, str):
        body = body.encode("utf-8")
    path.write_bytes(body)
    return path


def test_csv_happy_path_strips_values_and_sets_lines(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\n{csv_line(' r1 ', first_name='  Maria ')}\n{csv_line('r2')}\n")
    records = list(read_requests(path))
    empty = {"middle_name": None, "suffix": None, "tin": None, "unit": None, "prior_addresses": ()}
    assert all(isinstance(record, RequestRecord) for record in records)
    assert [dataclasses.asdict(record) for record in records] == [
        row("r1") | empty | {"source_line": 2},
        row("r2") | empty | {"source_line": 3},
    ]
    first = records[0]
    assert isinstance(first, RequestRecord)
    assert first.address == Address("12 Main St", None, "Springfield", "IL", "62704")


def test_csv_column_order_extra_and_optional_columns(tmp_path: Path) -> None:
    required = [c for c in REQUEST_COLUMNS if c not in ("dob", "tin", "middle_name", "suffix", "unit")]
    header = ["notes", *reversed(required)]
    values = row("r1")
    line = ",".join(["ignored", *(values[c] for c in reversed(required))])
    path = write_csv(tmp_path, ",".join(header).upper() + "\r\n" + line + "\r\n")
    (record,) = read_requests(path)
    assert isinstance(record, RequestRecord)
    assert record.request_id == "r1"
    assert record.tax_years == "2019-2021"
    assert record.dob is None and record.unit is None
    assert record.source_line == 2


def test_ragged_row_in_the_middle_costs_one_record(tmp_path: Path) -> None:
    lines = [csv_line(f"r{i}") for i in range(1, 6)]
    lines[2] = csv_line("r3") + ",extra,more"
    path = write_csv(tmp_path, HEADER + "\n" + "\n".join(lines) + "\n")
    records = list(read_requests(path))
    assert len(records) == 5
    malformed = [r for r in records if isinstance(r, MalformedRecord)]
    assert malformed == [MalformedRecord("r3", 4, "line 4: 18 fields where the header has 16")]
    good = [r for r in records if isinstance(r, RequestRecord)]
    assert [(r.request_id, r.source_line, r.tax_years) for r in good] == [
        ("r1", 2, "2019-2021"),
        ("r2", 3, "2019-2021"),
        ("r4", 5, "2019-2021"),
        ("r5", 6, "2019-2021"),
    ]


def test_short_row_is_ragged(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\nr1,Maria\n{csv_line('r2')}\n")
    first, second = read_requests(path)
    assert first == MalformedRecord("r1", 2, "line 2: 2 fields where the header has 16")
    assert isinstance(second, RequestRecord) and second.source_line == 3


def test_invalid_utf8_costs_only_its_row(tmp_path: Path) -> None:
    body = (
        f"{HEADER}\n{csv_line('r1')}\n".encode()
        + csv_line("r2", last_name="GarcXa").encode().replace(b"GarcXa", b"Garc\xe9a")
        + f"\n{csv_line('r3', last_name='García')}\n".encode()
    )
    records = list(read_requests(write_csv(tmp_path, body)))
    assert records[1] == MalformedRecord("r2", 3, "line 3: invalid UTF-8 bytes")
    assert isinstance(records[2], RequestRecord) and records[2].last_name == "García"
    assert records[2].source_line == 4


def test_invalid_utf8_in_the_id_is_not_echoed(tmp_path: Path) -> None:
    body = f"{HEADER}\n".encode() + b"r\xff" + csv_line("").encode() + b"\n"
    (record,) = read_requests(write_csv(tmp_path, body))
    assert isinstance(record, MalformedRecord)
    assert record.request_id is None
    assert outcome_request_id(record) == "line-2"


def test_oversized_field_and_row(tmp_path: Path) -> None:
    long_street = "1 " + "A" * 1_200
    wide = ",".join(["r3", *(["x" * 700] * 15)])
    path = write_csv(tmp_path, f"{HEADER}\n{csv_line('r1')}\n{csv_line('r2', street=long_street)}\n{wide}\n")
    records = list(read_requests(path))
    assert records[1] == MalformedRecord("r2", 3, "line 3: street has 1,202 characters (limit 1,000)")
    assert records[2] == MalformedRecord("r3", 4, "line 4: row has 10,502 characters (limit 10,000)")


def test_nul_byte(tmp_path: Path) -> None:
    nul_line = csv_line("r1", city="Spring\x00field")
    path = write_csv(tmp_path, f"{HEADER}\n{nul_line}\n{csv_line('r2')}\n")
    first, second = read_requests(path)
    assert first == MalformedRecord("r1", 2, "line 2: NUL byte")
    assert isinstance(second, RequestRecord)


def test_a_quoted_line_break_costs_both_lines_and_nothing_else(tmp_path: Path) -> None:
    # One physical line is one record: no request field holds a line break (docs/files.md).
    line = csv_line("r1", street='"12 Main St\nBuilding ""B"""')
    path = write_csv(tmp_path, f"{HEADER}\n{line}\n{csv_line('r2')}\n")
    first, second, third = read_requests(path)
    assert first == MalformedRecord("r1", 2, "line 2: street: quote not closed before the end of the line")
    assert isinstance(second, MalformedRecord) and second.source_line == 3
    assert second.problem == "line 3: 9 fields where the header has 16"
    assert isinstance(third, RequestRecord) and third.source_line == 4


def test_unterminated_quote_costs_one_record(tmp_path: Path) -> None:
    bad = csv_line("r2", first_name='"Maria')
    path = write_csv(tmp_path, f"{HEADER}\n{csv_line('r1')}\n{bad}\n{csv_line('r3')}\n{csv_line('r4')}")
    records = list(read_requests(path))
    assert records[1] == MalformedRecord("r2", 3, "line 3: first_name: quote not closed before the end of the line")
    assert [(r.request_id, r.source_line) for r in records if isinstance(r, RequestRecord)] == [
        ("r1", 2),
        ("r3", 4),
        ("r4", 5),
    ]


def test_a_stray_quote_that_a_later_quote_would_close_swallows_nothing(tmp_path: Path) -> None:
    # Issue 13, finding 2: `"` before a field on one line and `"X` after a field twelve lines
    # later made the csv module read the thirteen lines as one record; twelve requests vanished.
    lines = [csv_line(f"RQ{i:02}") for i in range(30)]
    lines[3] = csv_line("RQ03", first_name='"Maria')
    lines[15] = csv_line("RQ15", first_name='Maria"X')
    path = write_csv(tmp_path, HEADER + "\n" + "\n".join(lines) + "\n")
    records = list(read_requests(path))
    assert [record.source_line for record in records] == list(range(2, 32))
    assert [outcome_request_id(record) for record in records] == [f"RQ{i:02}" for i in range(30)]
    assert records[3] == MalformedRecord("RQ03", 5, "line 5: first_name: quote not closed before the end of the line")
    # A quote inside an unquoted field is a character (O"Brien); validation judges the name.
    assert all(isinstance(record, RequestRecord) for index, record in enumerate(records) if index != 3)
    assert isinstance(records[15], RequestRecord) and records[15].first_name == 'Maria"X'


def test_text_after_a_closing_quote_is_malformed_naming_the_field(tmp_path: Path) -> None:
    bad = csv_line("r1", city='"Spring"field')
    path = write_csv(tmp_path, f"{HEADER}\n{bad}\n{csv_line('r2')}\n")
    first, second = read_requests(path)
    assert first == MalformedRecord("r1", 2, "line 2: city: text after the closing quote")
    assert isinstance(second, RequestRecord)


def test_a_quote_opened_in_the_id_recovers_no_id(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\n{csv_line(chr(34) + 'r1')}\n")
    (record,) = read_requests(path)
    assert record == MalformedRecord(None, 2, "line 2: request_id: quote not closed before the end of the line")
    assert outcome_request_id(record) == "line-2"


def test_bom_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "\ufeff" + HEADER + "\n" + csv_line("r1") + "\n")
    (record,) = read_requests(path)
    assert isinstance(record, RequestRecord) and record.request_id == "r1"


def test_missing_request_id_is_malformed_with_synthesized_id(tmp_path: Path) -> None:
    path = write_csv(tmp_path, f"{HEADER}\n\n{csv_line('  ')}\n")
    (record,) = read_requests(path)
    assert record == MalformedRecord(None, 3, "request_id is missing")
    assert outcome_request_id(record) == "line-3"


def test_missing_header_columns_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "request_id,first_name,last_name,zip\nr1,A,B,12345\n")
    with pytest.raises(RequestFileError) as caught:
        read_requests(path)
    message = str(caught.value)
    assert str(path) in message
    assert "lacks required column(s): street, city, state, a_number, removal_order_date, statute, tax_years" in message
    assert "found: request_id, first_name, last_name, zip" in message


@pytest.mark.parametrize("name", ["requests.txt", "requests"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    path = write_csv(tmp_path, HEADER + "\n", name=name)
    with pytest.raises(RequestFileError, match="unknown request file type"):
        read_requests(path)


def test_missing_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(RequestFileError, match="cannot open"):
        read_requests(tmp_path / "absent.csv")
    with pytest.raises(RequestFileError, match="empty CSV"):
        read_requests(write_csv(tmp_path, ""))


def test_csv_from_text_matches_file_semantics() -> None:
    text = f"{HEADER}\n{csv_line('r1')}\n{csv_line('r2')},x\n"
    records = list(read_requests_from_text(text, "csv"))
    assert isinstance(records[0], RequestRecord) and records[0].source_line == 2
    assert records[1] == MalformedRecord("r2", 3, "line 3: 17 fields where the header has 16")
    assert list(read_requests_from_text(text.splitlines(), "csv")) == records
    assert list(read_requests_from_text(text.encode(), "csv")) == records


def test_ndjson_broken_non_object_and_types(tmp_path: Path) -> None:
    lines = [
        json.dumps(row("r1") | {"zip": 2134, "tin": None}),
        "",
        '{"request_id": "r2", ',
        "[1, 2]",
        json.dumps(row("r4") | {"dob": True}),
        json.dumps(row("r5") | {"city": {"name": "x"}}),
        json.dumps(row("r6")),
    ]
    path = tmp_path / "requests.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = list(read_requests(path))
    assert len(records) == 6
    first = records[0]
    assert isinstance(first, RequestRecord)
    assert (first.zip, first.tin, first.middle_name, first.source_line) == ("2134", None, None, 1)
    assert isinstance(records[1], MalformedRecord) and records[1].source_line == 3
    assert records[1].problem.startswith("line 3: not valid JSON")
    assert records[2] == MalformedRecord(None, 4, "line 4: a JSON array where an object is expected")
    assert records[3] == MalformedRecord("r4", 5, "line 5: dob is a boolean, not a string or number")
    assert records[4] == MalformedRecord("r5", 6, "line 6: city is a object, not a string or number")
    assert isinstance(records[5], RequestRecord) and records[5].source_line == 7


def test_ndjson_numbers_keep_their_literal_text() -> None:
    text = json.dumps(row("r1")).replace('"62704"', "62704.0").replace('"r1"', "12345678901234567890123")
    (record,) = read_requests_from_text(text, "ndjson")
    assert isinstance(record, RequestRecord)
    assert (record.request_id, record.zip) == ("12345678901234567890123", "62704.0")
    (nan,) = read_requests_from_text(json.dumps(row("r2")).replace('"62704"', "NaN"), "ndjson")
    assert isinstance(nan, MalformedRecord) and "not valid JSON" in nan.problem


def test_ndjson_prior_addresses() -> None:
    prior = [{"street": "9 Elm St", "city": "Boston", "state": "MA", "zip": 2134}, {"street": "1 Oak Ave"}]
    good = json.dumps(row("r1") | {"prior_addresses": prior})
    bad_shape = json.dumps(row("r2") | {"prior_addresses": {"street": "9 Elm St"}})
    bad_item = json.dumps(row("r3") | {"prior_addresses": ["9 Elm St"]})
    bad_key = json.dumps(row("r4") | {"prior_addresses": [{"zipcode": "02134"}]})
    bad_value = json.dumps(row("r5") | {"prior_addresses": [{"zip": [2134]}]})
    records = list(read_requests_from_text([good, bad_shape, bad_item, bad_key, bad_value], "ndjson"))
    first = records[0]
    assert isinstance(first, RequestRecord)
    assert first.prior_addresses == (
        Address("9 Elm St", None, "Boston", "MA", "2134"),
        Address("1 Oak Ave", None, None, None, None),
    )
    assert records[1:] == [
        MalformedRecord("r2", 2, "line 2: prior_addresses is a object, not a list"),
        MalformedRecord("r3", 3, "line 3: prior_addresses[0] is a string, not an object"),
        MalformedRecord("r4", 4, "line 4: prior_addresses[0] has unknown key(s): zipcode"),
        MalformedRecord("r5", 5, "line 5: prior_addresses[0].zip is a array, not a string or number"),
    ]


def test_ndjson_bad_utf8_line_and_missing_id(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(
        json.dumps(row("r1")).encode().replace(b"Maria", b"Mar\xeda")
        + b"\n"
        + json.dumps(row("")).encode()
        + b"\n"
        + json.dumps(row("r3")).encode()
        + b"\n"
    )
    first, second, third = read_requests(path)
    assert first == MalformedRecord(None, 1, "line 1: invalid UTF-8 bytes")
    assert second == MalformedRecord(None, 2, "request_id is missing")
    assert isinstance(third, RequestRecord) and third.source_line == 3


def test_parquet_round_trip_casts_to_string(tmp_path: Path) -> None:
    table_rows = [row("r1"), row(""), row("r3", street="9" * 1_001)]
    columns: dict[str, list[object]] = {c: [r[c] for r in table_rows] for c in REQUEST_COLUMNS}
    columns["zip"] = [62704, 2134, None]
    columns["extra"] = [1.5, 2.5, 3.5]
    path = tmp_path / "requests.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=2)
    first, second, third = read_requests(path)
    assert isinstance(first, RequestRecord)
    assert (first.request_id, first.zip, first.middle_name, first.source_line) == ("r1", "62704", None, 1)
    assert second == MalformedRecord(None, 2, "request_id is missing")
    assert third == MalformedRecord("r3", 3, "row 3: street has 1,001 characters (limit 1,000)")


def test_parquet_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(RequestFileError, match=r"broken\.parquet: cannot open as Parquet"):
        read_requests(broken)
    partial = tmp_path / "partial.parquet"
    pq.write_table(pa.table({"request_id": ["r1"], "zip": ["02134"]}), partial)
    with pytest.raises(RequestFileError, match=r"lacks required column\(s\): first_name, last_name"):
        read_requests(partial)


def test_quote_inside_a_field_is_literal_and_stray_cr_costs_one_row(tmp_path: Path) -> None:
    lines = [HEADER, csv_line("r1", last_name='O"Brien'), csv_line("r2", city="Spring\rfield"), csv_line("r3")]
    body = "\n".join(lines) + "\n"
    first, second, third = read_requests(write_csv(tmp_path, body))
    assert isinstance(first, RequestRecord) and first.last_name == 'O"Brien'
    assert second == MalformedRecord("r2", 3, "line 3: carriage return inside the line")
    assert isinstance(third, RequestRecord) and third.source_line == 4


def test_a_line_of_json_nested_too_deeply_is_malformed_and_loses_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "deep.ndjson"
    good = '{"request_id": "R2", "first_name": "Ana"}'
    path.write_text('{"request_id": "R1"}\n' + "[" * 50_000 + "\n" + good + "\n", encoding="utf-8")
    items = list(read_requests(path))
    assert len(items) == 3
    assert isinstance(items[1], MalformedRecord) and "nested too deeply" in items[1].problem
    assert not isinstance(items[2], MalformedRecord)


def test_random_bytes_or_another_format_are_refused_as_a_request_file(tmp_path: Path) -> None:
    """Issue 13, finding 10: a random-bytes `.ndjson` was read as 8,023 malformed records."""
    import random

    noise = write_csv(tmp_path, random.Random(13).randbytes(200_000), name="noise.ndjson")
    with pytest.raises(RequestFileError, match="not a NDJSON text file"):
        list(read_requests(noise))
    with pytest.raises(RequestFileError, match="not a CSV text file"):
        list(read_requests(write_csv(tmp_path, random.Random(14).randbytes(200_000), name="noise.csv")))
    # CSV text under a .ndjson name: text, but no line of it is a JSON object.
    csv_text = write_csv(tmp_path, f"{HEADER}\n{csv_line('r1')}\n", name="csv.ndjson")
    with pytest.raises(RequestFileError, match="not NDJSON"):
        list(read_requests(csv_text))
    # A real NDJSON file with a damaged line is read: that line is a malformed record of its own.
    lines = [json.dumps(row("r1")), "\x00\x01garbage", json.dumps(row("r3"))]
    items = list(read_requests(write_csv(tmp_path, "\n".join(lines) + "\n", name="damaged.ndjson")))
    assert [type(item) for item in items] == [RequestRecord, MalformedRecord, RequestRecord]
