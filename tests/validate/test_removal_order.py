from __future__ import annotations

import datetime

import pytest

from taxmatch.records import ReasonCode
from taxmatch.validate import normalize_a_number

from conftest import AS_OF, Codes

R = ReasonCode


def _days_ago(days: int) -> str:
    return (AS_OF - datetime.timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("a_number", "date"), [("", ""), (None, None), ("A123456789", ""), ("", "2024-01-15"), (" ", "2024-01-15")]
)
def test_missing_removal_order(codes: Codes, a_number: str | None, date: str | None) -> None:
    assert codes(a_number=a_number, removal_order_date=date) == [R.MISSING_REMOVAL_ORDER]


def test_missing_date_and_bad_a_number_both_reported(codes: Codes) -> None:
    assert codes(a_number="A12", removal_order_date="") == [R.MISSING_REMOVAL_ORDER, R.INVALID_A_NUMBER]


@pytest.mark.parametrize(
    "a_number",
    [
        "A123456789",
        "a123456789",
        "A-123-456-789",
        "A 123 456 789",
        "123 456 789",
        "12345678",
        "A12345678",
        "A-12345678",
    ],
)
def test_valid_a_numbers(codes: Codes, a_number: str) -> None:
    assert codes(a_number=a_number) == []


@pytest.mark.parametrize(
    "a_number",
    ["A1234567", "A1234567890", "000000000", "A00000000", "AA123456789", "B123456789", "A12345678X", "A--123456789",
     "A123--456789", "١٢٣٤٥٦٧٨٩"],
)  # fmt: skip
def test_invalid_a_numbers(codes: Codes, a_number: str) -> None:
    assert codes(a_number=a_number) == [R.INVALID_A_NUMBER]


def test_normalize_a_number() -> None:
    assert normalize_a_number("A-123-456-789") == "123456789"
    assert normalize_a_number("12345678") == "012345678"
    assert normalize_a_number("nope") is None


@pytest.mark.parametrize("date", ["2024-02-30", "2024-13-01", "15/01/2024", "yesterday", "1899-12-31", "2026-11-25",
                                  "2027-01-01", "24-01-15"])  # fmt: skip
def test_invalid_order_dates(codes: Codes, date: str) -> None:
    assert codes(removal_order_date=date) == [R.INVALID_REMOVAL_ORDER_DATE]


@pytest.mark.parametrize("date", ["2024-01-15", "01/15/2024", "1/5/2024", "2026-11-24", "1900-01-01"])
def test_valid_order_dates(codes: Codes, date: str) -> None:
    assert codes(removal_order_date=date) == []


def test_removal_period_applies_only_to_1253_a_1(codes: Codes) -> None:
    assert codes(removal_order_date=_days_ago(30), statute="8 U.S.C. § 1253(a)(1)") == [R.INVALID_REMOVAL_ORDER_DATE]
    assert codes(removal_order_date=_days_ago(30), statute="8 U.S.C. § 1326") == []
    assert codes(removal_order_date=_days_ago(89), statute="8 USC 1253(a)(1)") == [R.INVALID_REMOVAL_ORDER_DATE]
    assert codes(removal_order_date=_days_ago(90), statute="8 USC 1253(a)(1)") == []
    # A subsection of a removal-period statute carries its removal period.
    assert codes(removal_order_date=_days_ago(30), statute="8 USC 1253(a)(1)(A)") == [R.INVALID_REMOVAL_ORDER_DATE]


def test_a_number_shapes_decide_as_normalize_a_number() -> None:
    # a_number_ok remembers the verdict per shape (digits as nines); it must equal the pattern's.
    import itertools

    from taxmatch.validate.removal_order import a_number_ok

    pieces = ("", "A", "a", "-", " ", "  ", "1", "0", "12", "00", "123", "000", "456", "789", "٣", "x", "\t")
    texts = {"".join(parts) for parts in itertools.product(pieces, repeat=4)}
    texts |= {"A000000000", "000000000", "00000000", "A00000001", "A-000-000-000", "123456789", "0000000001"}
    for text in sorted(texts):
        assert a_number_ok(text) == (normalize_a_number(text) is not None), repr(text)
