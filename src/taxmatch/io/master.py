"""Streaming reader for master files of returns (CSV or Parquet, DESIGN.md section 3).

Rows come out in Arrow batches of raw strings ready to be inserted into DuckDB; a row
that cannot be used is reported as `MasterRowProblem` with its line (CSV) or row
(Parquet) number and never stops the load. Problems name the field, never its value:
master rows are taxpayer data and must not reach a log.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
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


class MasterFileError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, wrong header)."""


@dataclass(frozen=True)
class MasterRowProblem:
    file: str
    line: int
    problem: str


# What makes a read row unusable, as SQL over the staged rows (all VARCHAR, already trimmed).
# Checked in the database, vectorized, because a Python test per row of millions costs a minute.
_ALL_VALUES = f"concat({', '.join(MASTER_COLUMNS)})"
ROW_PROBLEM_SQL = f"""CASE
    WHEN greatest({", ".join(f"length({column})" for column in MASTER_COLUMNS)}) > {MAX_FIELD_CHARS}
        THEN 'a field is longer than {MAX_FIELD_CHARS} characters'
    WHEN contains({_ALL_VALUES}, chr(65533)) OR contains({_ALL_VALUES}, chr(0))
        THEN 'invalid UTF-8 or NUL byte'
    WHEN NOT regexp_full_match(tin, '[0-9]{{3}}-?[0-9]{{2}}-?[0-9]{{4}}') THEN 'tin is not 9 digits'
    WHEN NOT regexp_full_match(tax_year, '(19|20)[0-9][0-9]') THEN 'tax_year is not a year YYYY'
    WHEN lower(role) NOT IN ('primary', 'spouse') THEN 'role is not primary or spouse'
    WHEN last_name = '' THEN 'last_name is empty'
    WHEN street = '' THEN 'street is empty'
    WHEN zip <> '' AND NOT regexp_full_match(zip, '[0-9]{{5}}(-?[0-9]{{4}})?') THEN 'zip is not 5 or 9 digits'
    WHEN dob <> '' AND NOT regexp_full_match(dob, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN 'dob is not YYYY-MM-DD'
END"""


def _table(source_name: str, columns: list[list[str]], lines: list[int]) -> pa.Table:
    arrays = {
        column: pa.array(values, type=pa.string()) for column, values in zip(MASTER_COLUMNS, columns, strict=True)
    }
    arrays["source_file"] = pa.array([source_name] * len(lines), type=pa.string())
    arrays["source_line"] = pa.array(lines, type=pa.int64())
    return pa.table(arrays)


def _check_header(path: Path, found: list[str]) -> None:
    missing = [column for column in REQUIRED_MASTER_COLUMNS if column not in found]
    if missing:
        raise MasterFileError(
            f"{path}: header lacks required column(s) {', '.join(missing)}; found: {', '.join(found) or '(none)'}"
        )


_PLAIN_SCAN_BYTES = 16 << 20


def _plain_lines(path: Path) -> bool:
    """Whether every physical line after the header is exactly one record of valid UTF-8 text.

    Then Arrow's C++ reader (6x faster than the csv module at 3M rows, this scan included) reads
    the file with the same records, and a record's line number is its position; otherwise the
    csv module reads it. What rules a file out: a quote may hide a newline, a carriage return
    or a blank line shifts line numbers, and invalid UTF-8 or a NUL byte must cost one row (the
    csv module's lenient decoding), not the file.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    previous = b"\n"  # a blank first line is a blank line
    with path.open("rb") as binary:
        while chunk := binary.read(_PLAIN_SCAN_BYTES):
            if b'"' in chunk or b"\r" in chunk or b"\x00" in chunk or b"\n\n" in chunk:
                return False
            if previous == b"\n" and chunk[:1] == b"\n":
                return False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
            previous = chunk[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_plain_csv(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    """`_read_csv` for a file of plain lines (`_plain_lines`), by Arrow's streaming CSV reader."""
    with path.open("rb") as binary:
        header_line = binary.readline().decode("utf-8-sig")
        if not header_line:
            raise MasterFileError(f"{path}: the file is empty (no header row)")
        header = [column.strip().lower() for column in next(csv.reader([header_line]), [])]
        _check_header(path, header)
        width = len(header)
        positions = [header.index(column) if column in header else None for column in MASTER_COLUMNS]
        skipped: set[int] = set()

        def ragged(row: pa_csv.InvalidRow) -> str:
            # Arrow numbers the lines of what it reads, which starts after the header line.
            line = int(row.number) + 1
            # A plain-lines file has no blank line, so every invalid row has fields: report it.
            on_problem(MasterRowProblem(path.name, line, f"{row.actual_columns} fields where the header has {width}"))
            skipped.add(line)
            return "skip"

        reader = pa_csv.open_csv(
            binary,
            read_options=pa_csv.ReadOptions(
                use_threads=False, block_size=_PLAIN_SCAN_BYTES, column_names=[f"c{i}" for i in range(width)]
            ),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=ragged),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(width)}, strings_can_be_null=False
            ),
        )
        next_line = 2
        last_position = 0
        for batch in reader:
            lines: list[int] = []
            while len(lines) < batch.num_rows:
                if next_line not in skipped:
                    lines.append(next_line)
                next_line += 1
            empty = pa.array([""] * batch.num_rows, type=pa.string())
            arrays = {
                column: batch.column(position) if position is not None else empty
                for column, position in zip(MASTER_COLUMNS, positions, strict=True)
            }
            arrays["source_file"] = pa.array([path.name] * batch.num_rows, type=pa.string())
            arrays["source_line"] = pa.array(lines, type=pa.int64())
            yield pa.table(arrays)
            position = binary.tell()
            on_bytes(position - last_position)
            last_position = position
        on_bytes(path.stat().st_size - last_position)


def _read_csv(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    """Structural reading only (ragged rows); values are checked in SQL after staging."""
    if _plain_lines(path):
        yield from _read_plain_csv(path, on_problem, on_bytes)
        return
    with path.open("rb") as binary:
        # Decode leniently so one bad byte costs one row, not the file; SQL then rejects the row.
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text)
        try:
            header = [column.strip().lower() for column in next(reader)]
        except StopIteration:
            raise MasterFileError(f"{path}: the file is empty (no header row)") from None
        _check_header(path, header)
        width = len(header)
        positions = [header.index(column) if column in header else None for column in MASTER_COLUMNS]
        rows: list[list[str]] = []
        lines: list[int] = []
        last_position = 0
        for fields in reader:
            if len(fields) != width:
                if fields:
                    problem = f"{len(fields)} fields where the header has {width}"
                    on_problem(MasterRowProblem(path.name, reader.line_num, problem))
                continue
            rows.append(fields)
            lines.append(reader.line_num)
            if len(rows) >= BATCH_ROWS:
                yield _table(path.name, _select_columns(rows, positions), lines)
                rows, lines = [], []
                position = binary.tell()
                on_bytes(position - last_position)
                last_position = position
        if rows:
            yield _table(path.name, _select_columns(rows, positions), lines)
        on_bytes(path.stat().st_size - last_position)


def _select_columns(rows: list[list[str]], positions: list[int | None]) -> list[list[str]]:
    by_position = list(zip(*rows, strict=True))
    empty = [""] * len(rows)
    return [list(by_position[position]) if position is not None else empty for position in positions]


def _read_parquet(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise MasterFileError(f"{path}: not a readable Parquet file: {error}") from error
    found = [name.lower() for name in parquet.schema_arrow.names]
    _check_header(path, found)
    first_row = 1
    total_rows = max(parquet.metadata.num_rows, 1)
    size = path.stat().st_size
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        renamed = batch.rename_columns([name.lower() for name in batch.schema.names])
        columns = [
            [value or "" for value in renamed.column(column).cast(pa.string()).to_pylist()]
            if column in renamed.schema.names
            else [""] * renamed.num_rows
            for column in MASTER_COLUMNS
        ]
        yield _table(path.name, columns, list(range(first_row, first_row + renamed.num_rows)))
        first_row += renamed.num_rows
        on_bytes(int(size * renamed.num_rows / total_rows))


def read_master(
    path: Path,
    on_problem: Callable[[MasterRowProblem], None],
    on_bytes: Callable[[int], None] = lambda _: None,
) -> Iterator[pa.Table]:
    """Arrow batches of rows as read (all strings, plus source_file and source_line).

    Ragged rows are reported here; the values of the others are checked by `ROW_PROBLEM_SQL`.
    """
    if not path.is_file():
        raise MasterFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_csv(path, on_problem, on_bytes)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, on_problem, on_bytes)
    raise MasterFileError(f"{path}: unknown master file format {suffix!r}; use .csv or .parquet")
