"""Removal order rule: an A-number and a final-order date, both present and valid."""

from __future__ import annotations

import datetime
import re
from functools import lru_cache

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy
from taxmatch.validate.dates import parse_date
from taxmatch.validate.statutes import cites_any

# Orders before this are not plausible in a live request; it also rejects 2-digit-year slips.
EARLIEST_ORDER_DATE = datetime.date(1900, 1, 1)

_A_NUMBER_RE = re.compile(r"^(?:[Aa][\s-]?)?(\d(?:[\s-]?\d)*)$", re.ASCII)
_SEPARATORS_RE = re.compile(r"[\s-]+", re.ASCII)


def normalize_a_number(text: str | None) -> str | None:
    """The 9-digit A-number ('A-123-456-789' -> '123456789'; 8 digits get a leading zero), else None."""
    if not text:
        return None
    match = _A_NUMBER_RE.match(text.strip())
    if match is None:
        return None
    # The pattern (re.ASCII) admits only ASCII digits, ASCII whitespace and dashes here.
    digits = _SEPARATORS_RE.sub("", match.group(1))
    if len(digits) not in (8, 9) or digits.count("0") == len(digits):
        return None
    return digits.zfill(9)


def _within_removal_period(
    day: datetime.date, statute: str | None, days: int, statutes: tuple[str, ...], as_of: datetime.date
) -> bool:
    """True while the removal period of a removal-period statute has not yet run."""
    return (as_of - day).days < days and cites_any(statute, statutes)


def check_removal_order(
    a_number: str | None,
    order_date: str | None,
    statute: str | None,
    policy: Policy,
    as_of: datetime.date,
) -> list[ReasonCode]:
    a_number = (a_number or "").strip()
    order_date = (order_date or "").strip()
    codes: list[ReasonCode] = []
    if not a_number or not order_date:
        codes.append(ReasonCode.MISSING_REMOVAL_ORDER)
    if a_number and normalize_a_number(a_number) is None:
        codes.append(ReasonCode.INVALID_A_NUMBER)
    if order_date:
        day = _parse_order_date(order_date)
        if (
            day is None
            or not EARLIEST_ORDER_DATE <= day < as_of
            or _within_removal_period(day, statute, policy.removal_period_days, policy.removal_period_statutes, as_of)
        ):
            codes.append(ReasonCode.INVALID_REMOVAL_ORDER_DATE)
    return codes


# Order dates repeat across a batch (A-numbers do not); parse_date is a pure function.
_parse_order_date = lru_cache(maxsize=65_536)(parse_date)
