"""Request validation: every rejection code a request earns, one rule module per element.

`validate_request` is pure and total: any strings (or stray non-strings from a lenient
reader) give a list of codes, never an exception. Batch-level codes (DUPLICATE_REQUEST_ID,
MALFORMED_RECORD) are not decided here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import cast

from taxmatch.io.requests import read_requests
from taxmatch.records import ReasonCode, RequestRecord, sort_reason_codes
from taxmatch.settings import Policy
from taxmatch.validate.addresses import address_rule
from taxmatch.validate.dates import parse_date
from taxmatch.validate.identifiers import check_dob, normalize_tin
from taxmatch.validate.memo import remember
from taxmatch.validate.names import name_rule
from taxmatch.validate.removal_order import normalize_a_number, removal_order_rule
from taxmatch.validate.statutes import check_statute, parse_statute
from taxmatch.validate.tax_period import check_tax_period, parse_tax_years

__all__ = [
    "normalize_a_number",
    "normalize_tin",
    "parse_date",
    "parse_statute",
    "parse_tax_years",
    "request_rules",
    "validate_file",
    "validate_request",
    "validate_requests",
]


_TEXT_TYPES = frozenset({str, type(None)})

RequestCodes = Callable[[RequestRecord], list[ReasonCode]]


def _text(value: object) -> str | None:
    # Readers promise str | None, but a number from NDJSON must not crash validation.
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _memoized(rule: Callable[[str | None], tuple[ReasonCode, ...]]) -> Callable[[str | None], tuple[ReasonCode, ...]]:
    """`rule` remembering its verdict per value: statutes, periods and birth dates repeat across a batch."""
    memo: dict[str | None, tuple[ReasonCode, ...]] = {}

    def remembered(text: str | None) -> tuple[ReasonCode, ...]:
        codes = memo.get(text)
        if codes is None:
            codes = remember(memo, text, rule(text))
        return codes

    return remembered


# A few rule sets at a time: each holds memos of up to 65,536 verdicts per field.
@lru_cache(maxsize=4)
def request_rules(policy: Policy, as_of: datetime.date) -> RequestCodes:
    """`validate_request` for one policy and as-of date, with every rule's verdicts remembered."""
    names = name_rule(policy.name_placeholders)
    address = address_rule(policy.name_placeholders)
    removal_order = removal_order_rule(policy.removal_period_days, policy.removal_period_statutes, as_of)
    statute = _memoized(lambda text: tuple(check_statute(text, policy)))
    tax_period = _memoized(lambda text: tuple(check_tax_period(text, policy, as_of)))
    dob = _memoized(lambda text: tuple(check_dob(text, as_of)))

    def codes_of(request: RequestRecord) -> list[ReasonCode]:
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
        (
            first,
            middle,
            last,
            suffix,
            street,
            city,
            state,
            zip_code,
            a_number,
            order_date,
            statute_text,
            years,
            birth,
            tin,
        ) = cast(tuple[str | None, ...], values)
        # The unit plays no part in validation, so the fields go straight to the address rule.
        codes = (
            names(first, middle, last, suffix)
            + address(street, city, state, zip_code)
            + removal_order(a_number, order_date, statute_text)
            + statute(statute_text)
            + tax_period(years)
            + dob(birth)
        )
        if tin is not None and tin.strip() and normalize_tin(tin) is None:
            codes += (ReasonCode.INVALID_TIN,)
        # Most requests are valid: no need to sort an empty list.
        return sort_reason_codes(list(codes)) if codes else []

    return codes_of


_last_rules: tuple[Policy, datetime.date, RequestCodes] | None = None


def validate_request(request: RequestRecord, policy: Policy, as_of: datetime.date) -> list[ReasonCode]:
    """All rejection codes for one request, in contract order; [] means valid."""
    global _last_rules
    last = _last_rules
    # A policy is frozen, so the rules of the last one asked for can be reused without hashing it.
    if last is None or last[0] is not policy or last[1] != as_of:
        last = _last_rules = (policy, as_of, request_rules(policy, as_of))
    return last[2](request)


def validate_requests(
    requests: Iterable[RequestRecord], policy: Policy, as_of: datetime.date
) -> list[tuple[ReasonCode, ...]]:
    """`validate_request` of each request, in order, as tuples.

    Plain data in and out (records, a policy, a date; tuples of enum members), so a caller can
    hand a chunk of a batch to another process.
    """
    rules = request_rules(policy, as_of)
    return [tuple(rules(request)) for request in requests]


def validate_file(path: Path, policy: Policy, as_of: datetime.date) -> list[tuple[ReasonCode, ...] | None]:
    """The verdict of each item `read_requests(path)` yields, in order (None for a malformed one).

    A path in and tuples out: another process can read and validate a batch while this one
    reads it for scoring, without records crossing between them.
    """
    rules = request_rules(policy, as_of)
    return [tuple(rules(item)) if isinstance(item, RequestRecord) else None for item in read_requests(path)]
