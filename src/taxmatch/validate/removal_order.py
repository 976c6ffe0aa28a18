"""Removal order rule: an A-number and a final-order date, both present and valid."""

from __future__ import annotations

import datetime
import re

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy
from taxmatch.validate.dates import parse_date
from taxmatch.validate.statutes import cites_any

# Orders before this are not plausible in a live request; it also rejects 2-digit-year slips.
EARLIEST_ORDER_DATE = datetime.date(1900, 1, 1)

_A_NUMBER_RE = re.compile(r"^(?:[Aa][\s-]?)?(\d(?:[\s-]?\d)*)$", re.ASCII)


def normalize_a_number(text: str | None) -> str | None:
    """The 9-digit A-number ('A-123-456-789' -> '123456789'; 8 digits get a leading zero), else None."""
    if not text:
        return None
    match = _A_NUMBER_RE.match(text.strip())
    if match is None:
        return None
    digits = "".join(char for char in match.group(1) if char.isdigit())
    if not digits.isascii() or len(digits) not in (8, 9) or set(digits) == {"0"}:
        return None
    return digits.zfill(9)


def _within_removal_period(day: datetime.date, statute: str | None, policy: Policy, as_of: datetime.date) -> bool:
    """True while the removal period of a removal-period statute has not yet run."""
    return (as_of - day).days < policy.removal_period_days and cites_any(statute, policy.removal_period_statutes)


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
        day = parse_date(order_date)
        if day is None or not EARLIEST_ORDER_DATE <= day < as_of or _within_removal_period(day, statute, policy, as_of):
            codes.append(ReasonCode.INVALID_REMOVAL_ORDER_DATE)
    return codes
