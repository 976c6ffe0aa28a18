"""Streaming reader for master files of returns (CSV or Parquet, DESIGN.md section 3).

Rows come out in Arrow batches of raw strings ready to be inserted into DuckDB; a row
that cannot be used is reported as `MasterRowProblem` with its line (CSV) or row
(Parquet) number and never stops the load. Problems name the field, never its value:
master rows are taxpayer data and must not reach a log.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MASTER_COLUMNS: tuple[str, ...] = (
    "tin",
    "tax_year",
    "role",
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "dob",
    "street",
    "unit",
    "city",
    "state",
    "zip",
    "phone",
)
REQUIRED_MASTER_COLUMNS: tuple[str, ...] = ("tin", "tax_year", "role", "first_name", "last_name", "street")
MAX_FIELD_CHARS = 1_000
BATCH_ROWS = 100_000

_TIN = re.compile(r"^\d{3}-?\d{2}-?\d{4}$")
_YEAR = re.compile(r"^(19|20)\d\d$")
_ZIP = re.compile(r"^\d{5}(-?\d{4})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class MasterFileError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, wrong header)."""


@dataclass(frozen=True)
class MasterRowProblem:
    file: str
    line: int
    problem: str


def check_master_row(row: dict[str, str]) -> str | None:
    """The first problem with a master row, in words naming the field; None when usable."""
    for column, value in row.items():
        if len(value) > MAX_FIELD_CHARS:
            return f"field {column} is longer than {MAX_FIELD_CHARS} characters"
    if not _TIN.match(row["tin"]):
        return "tin is not 9 digits"
    if not _YEAR.match(row["tax_year"]):
        return "tax_year is not a year YYYY"
    if row["role"].lower() not in ("primary", "spouse"):
        return "role is not primary or spouse"
    if not row["first_name"] or not row["last_name"]:
        return "first_name or last_name is empty"
    if not row["street"]:
        return "street is empty"
    if row["zip"] and not _ZIP.match(row["zip"]):
        return "zip is not 5 or 9 digits"
    if row["dob"] and not _DATE.match(row["dob"]):
        return "dob is not YYYY-MM-DD"
    return None


class _BatchBuilder:
    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.columns: dict[str, list[str]] = {column: [] for column in MASTER_COLUMNS}
        self.lines: list[int] = []

    def add(self, row: dict[str, str], line: int) -> None:
        for column in MASTER_COLUMNS:
            self.columns[column].append(row[column])
        self.lines.append(line)

    def __len__(self) -> int:
        return len(self.lines)

    def take(self) -> pa.Table:
        arrays = {column: pa.array(values, type=pa.string()) for column, values in self.columns.items()}
        arrays["source_file"] = pa.array([self.source_name] * len(self.lines), type=pa.string())
        arrays["source_line"] = pa.array(self.lines, type=pa.int64())
        table = pa.table(arrays)
        self.columns = {column: [] for column in MASTER_COLUMNS}
        self.lines = []
        return table


def _normalize_row(raw: dict[str, str | None]) -> dict[str, str]:
    return {column: (raw.get(column) or "").strip() for column in MASTER_COLUMNS}


def _check_header(path: Path, found: list[str]) -> None:
    missing = [column for column in REQUIRED_MASTER_COLUMNS if column not in found]
    if missing:
        raise MasterFileError(
            f"{path}: header lacks required column(s) {', '.join(missing)}; found: {', '.join(found) or '(none)'}"
        )


def _read_csv(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    builder = _BatchBuilder(path.name)
    with path.open("rb") as binary:
        # Decode leniently so one bad byte costs one row, not the file; the row is then rejected.
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text)
        try:
            header = [column.strip().lower() for column in next(reader)]
        except StopIteration:
            raise MasterFileError(f"{path}: the file is empty (no header row)") from None
        _check_header(path, header)
        width = len(header)
        last_position = 0
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != width:
                on_problem(MasterRowProblem(path.name, line, f"{len(fields)} fields where the header has {width}"))
                continue
            if any("\ufffd" in field or "\x00" in field for field in fields):
                on_problem(MasterRowProblem(path.name, line, "invalid UTF-8 or NUL byte"))
                continue
            row = _normalize_row(dict(zip(header, fields, strict=True)))
            problem = check_master_row(row)
            if problem:
                on_problem(MasterRowProblem(path.name, line, problem))
                continue
            builder.add(row, line)
            if len(builder) >= BATCH_ROWS:
                position = binary.tell()
                on_bytes(position - last_position)
                last_position = position
                yield builder.take()
        if len(builder):
            yield builder.take()
        on_bytes(path.stat().st_size - last_position)


def _read_parquet(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise MasterFileError(f"{path}: not a readable Parquet file: {error}") from error
    found = [name.lower() for name in parquet.schema_arrow.names]
    _check_header(path, found)
    builder = _BatchBuilder(path.name)
    row_number = 0
    total_rows = max(parquet.metadata.num_rows, 1)
    size = path.stat().st_size
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        renamed = batch.rename_columns([name.lower() for name in batch.schema.names])
        present = [column for column in MASTER_COLUMNS if column in renamed.schema.names]
        as_text = {column: renamed.column(column).cast(pa.string()).to_pylist() for column in present}
        for index in range(renamed.num_rows):
            row_number += 1
            row = _normalize_row({column: as_text[column][index] for column in present})
            problem = check_master_row(row)
            if problem:
                on_problem(MasterRowProblem(path.name, row_number, problem))
                continue
            builder.add(row, row_number)
        on_bytes(int(size * renamed.num_rows / total_rows))
        if len(builder) >= BATCH_ROWS:
            yield builder.take()
    if len(builder):
        yield builder.take()


def read_master(
    path: Path,
    on_problem: Callable[[MasterRowProblem], None],
    on_bytes: Callable[[int], None] = lambda _: None,
) -> Iterator[pa.Table]:
    """Arrow batches of usable rows (all strings, plus source_file and source_line)."""
    if not path.is_file():
        raise MasterFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_csv(path, on_problem, on_bytes)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, on_problem, on_bytes)
    raise MasterFileError(f"{path}: unknown master file format {suffix!r}; use .csv or .parquet")
