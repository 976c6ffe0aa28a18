from __future__ import annotations

import pytest

from taxmatch.records import ReasonCode

from conftest import Codes

R = ReasonCode


@pytest.mark.parametrize(("first", "last"), [("", "Garcia"), ("Maria", ""), ("  ", "Garcia"), (None, None)])
def test_missing_name(codes: Codes, first: str | None, last: str | None) -> None:
    assert R.MISSING_NAME in codes(first_name=first, last_name=last)


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("UNKNOWN", "Garcia"),
        ("Maria", "n/a"),
        ("FNU", "Garcia"),
        ("Maria", "LNU"),
        ("John", "Doe"),
        ("JANE", "DOE"),
        ("Don't", "Care"),
        ("Maria", "Don't Care"),
        ("Mar1a", "Garcia"),
        ("Maria", "Garcia2"),
        ("Maria", "---"),
        ("Maria", "Garcia@Lopez"),
        ("x x x", "Garcia"),
    ],
)
def test_invalid_name(codes: Codes, first: str, last: str) -> None:
    assert codes(first_name=first, last_name=last) == [R.INVALID_NAME]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("José", "Núñez"),
        ("J", "Garcia"),  # an initial is a name; the matcher weighs it
        ("Mary-Ann", "O'Brien"),
        ("Mary Ann", "St. John"),
        ("Maria", "D’Angelo"),
        ("李", "小龙"),
        ("Johnny", "Doe"),  # only the placeholder pair is rejected
        ("John", "Doerr"),
    ],
)
def test_near_miss_names_are_valid(codes: Codes, first: str, last: str) -> None:
    assert codes(first_name=first, last_name=last) == []


@pytest.mark.parametrize("middle", ["Elena", "E.", "E", "NMN", "Ana María", None, ""])
def test_valid_middle_names(codes: Codes, middle: str | None) -> None:
    assert codes(middle_name=middle) == []


@pytest.mark.parametrize("middle", ["3", "UNKNOWN", "E#"])
def test_invalid_middle_names(codes: Codes, middle: str) -> None:
    assert codes(middle_name=middle) == [R.INVALID_NAME]


@pytest.mark.parametrize("suffix", ["Jr.", "JR", "Sr", "III", "iv", "2nd", "Esq."])
def test_valid_suffixes(codes: Codes, suffix: str) -> None:
    assert codes(suffix=suffix) == []


@pytest.mark.parametrize("suffix", ["Junior Senior", "XYZ", "99", "UNKNOWN"])
def test_invalid_suffixes(codes: Codes, suffix: str) -> None:
    assert codes(suffix=suffix) == [R.INVALID_NAME]
