from __future__ import annotations

import datetime

import pytest

from taxmatch.records import ReasonCode
from taxmatch.validate import normalize_tin, parse_date

from conftest import Codes

R = ReasonCode


def test_parse_date() -> None:
    assert parse_date("1980-02-29") == datetime.date(1980, 2, 29)
    assert parse_date("02/29/1980") == datetime.date(1980, 2, 29)
    assert parse_date("1981-02-29") is None
    assert parse_date("1980-2-3") == datetime.date(1980, 2, 3)
    assert parse_date("garbage") is None
    assert parse_date(None) is None


@pytest.mark.parametrize("dob", ["1980-05-17", "05/17/1980", "2026-11-25", "1901-11-25", None, ""])
def test_valid_dob(codes: Codes, dob: str | None) -> None:
    assert codes(dob=dob) == []


@pytest.mark.parametrize("dob", ["1980-02-30", "2026-11-26", "1901-11-24", "17/05/1980", "May 17 1980", "0000-00-00"])
def test_invalid_dob(codes: Codes, dob: str) -> None:
    assert codes(dob=dob) == [R.INVALID_DOB]


@pytest.mark.parametrize(
    "tin",
    ["123-45-6788", "123456788", "123 45 6788", "900-70-1234", "912-50-1234", "999-99-1234", "665-12-3456", None, ""],
)
def test_valid_tin(codes: Codes, tin: str | None) -> None:
    assert codes(tin=tin) == []


@pytest.mark.parametrize(
    "tin",
    [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",  # 9xx but middle digits not an ITIN range
        "912-93-1234",  # 93 is not an ITIN group
        "912-66-1234",
        "123-00-4567",
        "123-45-0000",
        "111-11-1111",
        "123-45-6789",
        "12345678",
        "1234567890",
        "12345678A",
        "١٢٣٤٥٦٧٨٨",
    ],
)
def test_invalid_tin(codes: Codes, tin: str) -> None:
    assert codes(tin=tin) == [R.INVALID_TIN]


def test_normalize_tin() -> None:
    assert normalize_tin("123-45-6788") == "123456788"
    assert normalize_tin("123-45-6789") is None
