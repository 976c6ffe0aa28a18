"""Agency names: one agency whatever the letter case it is written in.

An operator types ``--agency ice`` for the agency recorded as ``ICE``; a filter that silently
found nothing would read as "no disclosures". Every comparison of agency names goes through
`agency_key` (Python) or `AGENCY_KEY_SQL` (SQL): Python's ``str.lower`` and DuckDB's ``lower``
fold the same letters, and a test holds the two together.
"""

from __future__ import annotations


def agency_key(name: str) -> str:
    """The form two agency names are compared in: trimmed and lower case."""
    return name.strip().lower()


def same_agency(first: str, second: str) -> bool:
    return agency_key(first) == agency_key(second)


def agency_key_sql(column: str) -> str:
    """The SQL twin of `agency_key` for a column (or a ``?`` parameter)."""
    return f"lower(trim({column}))"
