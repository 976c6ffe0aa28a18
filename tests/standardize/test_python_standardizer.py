"""The Python standardizer (on-demand path) gives exactly what the SQL gives (batch path)."""

from __future__ import annotations

import csv
import datetime
from pathlib import Path

import duckdb
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.io.requests import read_requests
from taxmatch.match.blocking import KEY_COLUMNS, block_keys
from taxmatch.match.model import MODEL_INPUT_COLUMNS
from taxmatch.match.request_inputs import _request_input_rows, request_input_table
from taxmatch.records import RequestRecord
from taxmatch.standardize.python_standardizer import standardize_row
from taxmatch.synth import generate

COMPARED = [column for column in MODEL_INPUT_COLUMNS if column != "unique_id"] + list(KEY_COLUMNS)

AWKWARD = [
    RequestRecord("a1", "José", "M.", "Núñez-García", "Jr.", "1980-01-02", "123-45-6789", "123 N. Main St., #4B",
                  None, "Springfield", " il ", "62701-1234"),
    RequestRecord("a2", "O'Brien", None, "de la Cruz", None, None, None, "P.O. Box 77", "Unit 9", None, "TX", "75001"),
    RequestRecord("a3", "Zhang", "", "Mohammed Hussein", "III", "1990-12-31", None, "45 De La Cruz Boulevard APT 12",
                  "apt #12", "Los Angeles", "CA", "90001"),
    RequestRecord("a4", "  ", None, "X", None, None, None, "9 1/2 Oak Avenue Suite 300", "", "", "", ""),
    RequestRecord("a5", "Ñandú", "Zoë", "Nguyễn", "sr", None, "000000000", "100 West 5th Street", "Floor 2", "NY", "NY",
                  "10001"),
]  # fmt: skip


def _sql_rows(engine: DuckDBEngine, requests: list[tuple[int, RequestRecord]]) -> dict[int, dict[str, object]]:
    engine._stage_requests(request_input_table(requests))
    cursor = engine.connection.execute(f"SELECT request_index, {', '.join(COMPARED)} FROM request_inputs")
    names = [description[0] for description in cursor.description]
    return {int(row[0]): dict(zip(names[1:], row[1:], strict=True)) for row in cursor.fetchall()}


def _python_row(request: RequestRecord) -> dict[str, object]:
    (row,) = _request_input_rows([(0, request)])
    standardized = standardize_row(*row[2:])
    standardized.update(block_keys(standardized))
    return {column: standardized[column] for column in COMPARED}


@pytest.fixture(scope="module")
def engine() -> DuckDBEngine:
    return DuckDBEngine(duckdb.connect())


def test_awkward_requests(engine: DuckDBEngine) -> None:
    requests = list(enumerate(AWKWARD))
    sql = _sql_rows(engine, requests)
    for index, request in requests:
        python = _python_row(request)
        assert {k: (list(v) if isinstance(v, tuple) else v) for k, v in python.items()} == sql[index], request


def test_every_synthetic_request_and_return(engine: DuckDBEngine, tmp_path: Path) -> None:
    generate(tmp_path, people=800, requests=800, seed=5, as_of=datetime.date(2026, 11, 25))
    requests = [item for item in read_requests(tmp_path / "requests.csv") if isinstance(item, RequestRecord)]
    # Master rows, read as requests, cover the spellings that returns use.

    with (tmp_path / "master.csv").open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle)):
            values = {key: (value or None) for key, value in row.items()}
            requests.append(
                RequestRecord(
                    f"m{number}",
                    values["first_name"],
                    values["middle_name"],
                    values["last_name"],
                    values["suffix"],
                    values["dob"],
                    values["tin"],
                    values["street"],
                    values["unit"],
                    values["city"],
                    values["state"],
                    values["zip"],
                )
            )
    indexed = list(enumerate(requests))
    sql = _sql_rows(engine, [(index, RequestRecord(r.request_id, *_fields(r))) for index, r in indexed])
    mismatches = [
        (request.request_id, column)
        for index, request in indexed
        for column, value in _python_row(RequestRecord(request.request_id, *_fields(request))).items()
        if value != sql[index][column]
    ]
    assert not mismatches, mismatches[:10]


def _fields(request: RequestRecord) -> tuple[str | None, ...]:
    return (request.first_name, request.middle_name, request.last_name, request.suffix, request.dob, request.tin,
            request.street, request.unit, request.city, request.state, request.zip)  # fmt: skip
