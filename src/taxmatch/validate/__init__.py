"""Request validation: every rejection code a request earns, one rule module per element.

`validate_request` is pure and total: any strings (or stray non-strings from a lenient
reader) give a list of codes, never an exception. Batch-level codes (DUPLICATE_REQUEST_ID,
MALFORMED_RECORD) are not decided here.
"""

from __future__ import annotations

import datetime
from typing import cast

from taxmatch.records import ReasonCode, RequestRecord, sort_reason_codes
from taxmatch.settings import Policy
from taxmatch.validate.addresses import address_codes
from taxmatch.validate.dates import parse_date
from taxmatch.validate.identifiers import check_dob, check_tin, normalize_tin
from taxmatch.validate.names import check_names
from taxmatch.validate.removal_order import check_removal_order, normalize_a_number
from taxmatch.validate.statutes import check_statute, parse_statute
from taxmatch.validate.tax_period import check_tax_period, parse_tax_years

__all__ = [
    "normalize_a_number",
    "normalize_tin",
    "parse_date",
    "parse_statute",
    "parse_tax_years",
    "validate_request",
]


_TEXT_TYPES = frozenset({str, type(None)})


def _text(value: object) -> str | None:
    # Readers promise str | None, but a number from NDJSON must not crash validation.
    if value is None or isinstance(value, str):
        return value
    return str(value)


def validate_request(request: RequestRecord, policy: Policy, as_of: datetime.date) -> list[ReasonCode]:
    """All rejection codes for one request, in contract order; [] means valid."""
    values: tuple[object, ...] = (
        request.first_name,
        request.middle_name,
        request.last_name,
        request.suffix,
        request.street,
        request.city,
        request.state,
        request.zip,
        request.a_number,
        request.removal_order_date,
        request.statute,
        request.tax_years,
        request.dob,
        request.tin,
    )
    # One C-level type check for the usual all-text record instead of fourteen calls.
    if not _TEXT_TYPES.issuperset(map(type, values)):
        values = tuple(_text(value) for value in values)
    first, middle, last, suffix, street, city, state, zip_code, a_number, order_date, statute, years, dob, tin = cast(
        tuple[str | None, ...], values
    )
    codes = check_names(first, middle, last, suffix, policy)
    # The unit plays no part in validation, so the fields go straight to the address rule.
    codes += address_codes(street, city, state, zip_code, policy)
    codes += check_removal_order(a_number, order_date, statute, policy, as_of)
    codes += check_statute(statute, policy)
    codes += check_tax_period(years, policy, as_of)
    codes += check_dob(dob, as_of)
    codes += check_tin(tin)
    # Most requests are valid: no need to sort an empty list.
    return sort_reason_codes(codes) if codes else codes
