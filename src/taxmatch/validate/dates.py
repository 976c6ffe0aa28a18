"""Date parsing shared by the date-of-birth and removal-order rules."""

from __future__ import annotations

import datetime
import re

_ISO_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$", re.ASCII)
_US_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", re.ASCII)


def parse_date(text: str | None) -> datetime.date | None:
    """A real calendar date written YYYY-MM-DD or MM/DD/YYYY; None otherwise (never raises)."""
    if not text:
        return None
    value = text.strip()
    iso = _ISO_RE.match(value)
    if iso:
        year, month, day = int(iso.group(1)), int(iso.group(2)), int(iso.group(3))
    else:
        us = _US_RE.match(value)
        if us is None:
            return None
        month, day, year = int(us.group(1)), int(us.group(2)), int(us.group(3))
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def years_before(day: datetime.date, years: int) -> datetime.date:
    """The same calendar day `years` earlier (29 February falls back to the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)
