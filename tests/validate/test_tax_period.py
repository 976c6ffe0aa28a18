from __future__ import annotations

import pytest

from taxmatch.records import ReasonCode
from taxmatch.validate import parse_tax_years

from conftest import Codes

R = ReasonCode


@pytest.mark.parametrize(
    ("text", "years"),
    [("2023", (2023, 2023)), ("2021-2023", (2021, 2023)), (" 2021 - 2023 ", (2021, 2023)), ("2021–2023", (2021, 2023))],
)
def test_parse_tax_years(text: str, years: tuple[int, int]) -> None:
    assert parse_tax_years(text) == years


@pytest.mark.parametrize("text", ["", "23", "2023-2021", "2023/2024", "twenty", "2023-", "2023,2024"])
def test_parse_tax_years_rejects(text: str) -> None:
    assert parse_tax_years(text) is None


@pytest.mark.parametrize("text", ["2025", "2016", "2016-2025", "2020 - 2022"])
def test_permitted_years(codes: Codes, text: str) -> None:
    assert codes(tax_years=text) == []


@pytest.mark.parametrize("text", ["2026", "2025-2026", "2015", "2015-2020", "2030", "2024-2023", "last year"])
def test_invalid_tax_period(codes: Codes, text: str) -> None:
    # 2026 is as_of.year: not yet a completed tax year.
    assert codes(tax_years=text) == [R.INVALID_TAX_PERIOD]


@pytest.mark.parametrize("text", ["", "  ", None])
def test_missing_tax_period(codes: Codes, text: str | None) -> None:
    assert codes(tax_years=text) == [R.MISSING_TAX_PERIOD]
