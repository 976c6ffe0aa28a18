"""Removal order rule: an A-number and a final-order date, both present and valid."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from functools import lru_cache

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy
from taxmatch.validate.dates import parse_date
from taxmatch.validate.memo import remember
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


def check_removal_order(
    a_number: str | None,
    order_date: str | None,
    statute: str | None,
    policy: Policy,
    as_of: datetime.date,
) -> list[ReasonCode]:
    rule = removal_order_rule(policy.removal_period_days, policy.removal_period_statutes, as_of)
    return list(rule(a_number, order_date, statute))


# Every ASCII digit as "9": whether `normalize_a_number` accepts a text depends only on where its
# digits are (the pattern, the digit count), and on whether they are all zeros.
_DIGITS_AS_NINE = str.maketrans("0123456789", "9999999999")
_a_number_shapes: dict[str, bool] = {}


def a_number_ok(text: str) -> bool:
    """`normalize_a_number(text) is not None`, remembered per shape ('A-999-999-999'): A-numbers are all
    distinct, their shapes few."""
    shape = text.translate(_DIGITS_AS_NINE)
    accepted = _a_number_shapes.get(shape)
    if accepted is None:
        accepted = normalize_a_number(shape) is not None
        if len(_a_number_shapes) >= 4096:
            _a_number_shapes.clear()
        _a_number_shapes[shape] = accepted
    # The shape's digits are nines, so only the real digits can all be zeros.
    return accepted and text.count("0") != shape.count("9")


RemovalOrderRule = Callable[[str | None, str | None, str | None], tuple[ReasonCode, ...]]
_MISSING = (ReasonCode.MISSING_REMOVAL_ORDER,)
_INVALID_DATE = (ReasonCode.INVALID_REMOVAL_ORDER_DATE,)
# An order date as written: (present, invalid whatever the statute, inside the removal period).
_DateVerdict = tuple[bool, bool, bool]


# A few rule sets at a time: each holds memos of up to 65,536 verdicts per field.
@lru_cache(maxsize=4)
def removal_order_rule(
    removal_period_days: int, removal_period_statutes: tuple[str, ...], as_of: datetime.date
) -> RemovalOrderRule:
    """The removal order rule for one policy and as-of date, remembering order dates (they repeat)."""
    dates: dict[str | None, _DateVerdict] = {}
    statutes: dict[str | None, bool] = {}

    def date_verdict(raw: str | None) -> _DateVerdict:
        text = (raw or "").strip()
        day = parse_date(text) if text else None
        invalid = bool(text) and (day is None or not EARLIEST_ORDER_DATE <= day < as_of)
        # A date still inside the removal period is invalid only under a removal-period statute.
        in_period = bool(text) and not invalid and day is not None and (as_of - day).days < removal_period_days
        verdict = (bool(text), invalid, in_period)
        return remember(dates, raw, verdict)

    def rule(a_number: str | None, order_date: str | None, statute: str | None) -> tuple[ReasonCode, ...]:
        has_date, bad_date, in_period = dates.get(order_date) or date_verdict(order_date)
        if in_period:
            cited = statutes.get(statute)
            if cited is None:
                cited = remember(statutes, statute, cites_any(statute, removal_period_statutes))
            bad_date = cited
        text = (a_number or "").strip()
        has_a_number = bool(text)
        bad_a_number = has_a_number and not a_number_ok(text)
        if has_date and not bad_date and has_a_number and not bad_a_number:
            return ()
        codes: list[ReasonCode] = []
        if not has_a_number or not has_date:
            codes.append(ReasonCode.MISSING_REMOVAL_ORDER)
        if bad_a_number:
            codes.append(ReasonCode.INVALID_A_NUMBER)
        if bad_date:
            codes.append(ReasonCode.INVALID_REMOVAL_ORDER_DATE)
        return tuple(codes)

    return rule
