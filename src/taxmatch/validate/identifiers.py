"""Optional identifiers: date of birth and TIN. Absent is fine; present must be valid."""

from __future__ import annotations

import datetime
import re
from functools import lru_cache

from taxmatch.records import ReasonCode
from taxmatch.validate.dates import parse_date, years_before

__all__ = ["MAX_AGE_YEARS", "check_dob", "check_tin", "is_itin", "normalize_tin", "parse_date"]

MAX_AGE_YEARS = 125

_TIN_SEPARATORS_RE = re.compile(r"[\s-]+")
_ITIN_GROUPS = frozenset([*range(50, 66), *range(70, 89), *range(90, 93), *range(94, 100)])


def check_dob(text: str | None, as_of: datetime.date) -> list[ReasonCode]:
    if not text or not text.strip():
        return []
    return [] if _dob_ok(text, as_of) else [ReasonCode.INVALID_DOB]


# Birth dates repeat across a batch (a few tens of thousands of days in all).
@lru_cache(maxsize=65_536)
def _dob_ok(text: str, as_of: datetime.date) -> bool:
    dob = parse_date(text)
    return dob is not None and years_before(as_of, MAX_AGE_YEARS) <= dob <= as_of


def is_itin(digits: str) -> bool:
    return digits[0] == "9" and int(digits[3:5]) in _ITIN_GROUPS


def normalize_tin(text: str | None) -> str | None:
    """The 9 digits of a valid SSN or ITIN ('123-45-6788' -> '123456788'); None if absent or invalid."""
    if not text:
        return None
    digits = _TIN_SEPARATORS_RE.sub("", text)
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return None
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if not is_itin(digits) and (area in ("000", "666") or area[0] == "9"):
        return None
    if group == "00" or serial == "0000":
        return None
    # Obvious fillers that pass the structural rules.
    if len(set(digits)) == 1 or digits in ("123456789", "987654321"):
        return None
    return digits


def check_tin(text: str | None) -> list[ReasonCode]:
    if not text or not text.strip():
        return []
    return [] if normalize_tin(text) else [ReasonCode.INVALID_TIN]
