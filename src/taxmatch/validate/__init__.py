"""Request validation: every rejection code a request earns, one rule module per element.

`validate_request` is pure and total: any strings (or stray non-strings from a lenient
reader) give a list of codes, never an exception. Batch-level codes (DUPLICATE_REQUEST_ID,
MALFORMED_RECORD) are not decided here.
"""

from __future__ import annotations

import datetime

from taxmatch.records import Address, ReasonCode, RequestRecord, sort_reason_codes
from taxmatch.settings import Policy
from taxmatch.validate.addresses import check_address
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


def _text(value: object) -> str | None:
    # Readers promise str | None, but a number from NDJSON must not crash validation.
    if value is None or isinstance(value, str):
        return value
    return str(value)


def validate_request(request: RequestRecord, policy: Policy, as_of: datetime.date) -> list[ReasonCode]:
    """All rejection codes for one request, in contract order; [] means valid."""
    statute = _text(request.statute)
    codes = check_names(
        _text(request.first_name), _text(request.middle_name), _text(request.last_name), _text(request.suffix), policy
    )
    address = Address(
        _text(request.street), _text(request.unit), _text(request.city), _text(request.state), _text(request.zip)
    )
    codes += check_address(address, policy)
    codes += check_removal_order(_text(request.a_number), _text(request.removal_order_date), statute, policy, as_of)
    codes += check_statute(statute, policy)
    codes += check_tax_period(_text(request.tax_years), policy, as_of)
    codes += check_dob(_text(request.dob), as_of)
    codes += check_tin(_text(request.tin))
    return sort_reason_codes(codes)
