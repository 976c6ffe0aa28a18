"""Tax period: the requested years must all be completed and among the most recent ones."""

from __future__ import annotations

import datetime
import re
from functools import lru_cache

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy

_YEARS_RE = re.compile(r"^(\d{4})(?:\s*[-–—]\s*(\d{4}))?$", re.ASCII)


@lru_cache(maxsize=4096)  # a batch has a handful of distinct periods and 100k requests
def parse_tax_years(text: str | None) -> tuple[int, int] | None:
    """'2023' -> (2023, 2023); '2021 - 2023' -> (2021, 2023); None if not that shape or reversed."""
    if not text:
        return None
    match = _YEARS_RE.match(text.strip())
    if match is None:
        return None
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else start
    if start > end:
        return None
    return start, end


def permitted_tax_years(policy: Policy, as_of: datetime.date) -> tuple[int, int]:
    """First and last permitted year: a year is completed once the as-of date is in a later year."""
    return as_of.year - policy.tax_period_years, as_of.year - 1


def check_tax_period(text: str | None, policy: Policy, as_of: datetime.date) -> list[ReasonCode]:
    return list(_tax_period_codes(text, policy.tax_period_years, as_of))


# A batch asks for a few dozen periods, so the verdict is cached on the text and the range.
@lru_cache(maxsize=4096)
def _tax_period_codes(text: str | None, tax_period_years: int, as_of: datetime.date) -> tuple[ReasonCode, ...]:
    if not text or not text.strip():
        return (ReasonCode.MISSING_TAX_PERIOD,)
    years = parse_tax_years(text)
    if years is None:
        return (ReasonCode.INVALID_TAX_PERIOD,)
    first, last = as_of.year - tax_period_years, as_of.year - 1  # as in permitted_tax_years
    if years[0] < first or years[1] > last:
        return (ReasonCode.INVALID_TAX_PERIOD,)
    return ()
