"""Master file reading: Arrow's fast reader and the csv module give the same rows and problems."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from taxmatch.io import master
from taxmatch.io.master import MasterFileError, MasterRowProblem, read_master

HEADER = "TIN,tax_year,role,first_name,middle_name,last_name,suffix,dob,street,unit,city,state,zip,phone,extra\n"
ROW = "123-45-6789,2024,primary,José,,Lee,,,1 Main St,,Tyler,TX,75701,,x\n"


def _read(path: Path, *, plain: bool | None) -> tuple[list[dict[str, object]], list[MasterRowProblem]]:
    problems: list[MasterRowProblem] = []
    original = master._plain_lines
    if plain is False:
        master._plain_lines = lambda _: None  # type: ignore[assignment]
    try:
        tables = list(read_master(path, problems.append))
    finally:
        master._plain_lines = original  # type: ignore[assignment]
    rows = pa.concat_tables(tables).to_pylist() if tables else []
    return rows, problems


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "master.csv"
    path.write_bytes(content)
    return path


def test_plain_file_is_read_by_arrow_with_the_csv_modules_rows_lines_and_problems(tmp_path: Path) -> None:
    content = HEADER + ROW + "1,2\n" + ROW.replace("primary", "spouse") + ",".join("1" * 16) + "\n" + ROW
    path = _write(tmp_path, content.encode("utf-8"))
    assert master._plain_lines(path) == 6
    fast = _read(path, plain=None)
    slow = _read(path, plain=False)
    assert fast == slow
    rows, problems = fast
    assert [row["source_line"] for row in rows] == [2, 4, 6]
    assert rows[0]["first_name"] == "José" and rows[0]["phone"] == "" and rows[0]["tin"] == "123-45-6789"
    assert problems == [
        MasterRowProblem("master.csv", 3, "2 fields where the header has 15"),
        MasterRowProblem("master.csv", 5, "16 fields where the header has 15"),
    ]


def test_a_byte_order_mark_and_missing_optional_columns(tmp_path: Path) -> None:
    content = "\ufefftin,tax_year,role,first_name,last_name,street\n123456789,2024,primary,Ann,Lee,1 Main\n"
    path = _write(tmp_path, content.encode("utf-8"))
    assert master._plain_lines(path)
    rows, problems = _read(path, plain=None)
    assert (rows, problems) == _read(path, plain=False)
    assert rows[0]["tin"] == "123456789" and rows[0]["dob"] == "" and rows[0]["source_line"] == 2


@pytest.mark.parametrize(
    "content",
    [
        (HEADER + ROW.replace("José", '"Jo,sé"')).encode("utf-8"),  # a quote may hide a newline
        (HEADER + ROW).replace("\n", "\r\n").encode("utf-8"),
        (HEADER + ROW).encode("utf-8").replace(b"Jos", b"Jo\xff"),  # invalid UTF-8 costs one row
        (HEADER + ROW).encode("utf-8").replace(b"Lee", b"L\x00e"),
    ],
)
def test_anything_but_plain_lines_goes_to_the_line_reader(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    assert master._plain_lines(path) is None
    assert _read(path, plain=None) == _read(path, plain=False)


def test_a_leading_blank_line_is_not_plain(tmp_path: Path) -> None:
    assert master._plain_lines(_write(tmp_path, b"\n" + (HEADER + ROW).encode("utf-8"))) is None


def test_an_empty_file_or_a_header_without_required_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MasterFileError, match="empty"):
        _read(_write(tmp_path, b""), plain=None)
    with pytest.raises(MasterFileError, match="header lacks"):
        _read(_write(tmp_path, b"tin,tax_year\n1,2\n"), plain=None)
