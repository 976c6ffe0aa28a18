from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from typing import Any

import pytest

from taxmatch.records import ReasonCode, RequestRecord
from taxmatch.settings import Policy
from taxmatch.validate import validate_request

AS_OF = datetime.date(2026, 11, 25)

VALID = RequestRecord(
    request_id="r1",
    first_name="Maria",
    last_name="Garcia Lopez",
    street="123 N Main St",
    unit="Apt 4B",
    city="Springfield",
    state="IL",
    zip="62701",
    a_number="A123456789",
    removal_order_date="2024-01-15",
    statute="8 U.S.C. § 1326",
    tax_years="2023-2025",
)

Codes = Callable[..., list[ReasonCode]]


@pytest.fixture(scope="session")
def policy() -> Policy:
    return Policy.default()


@pytest.fixture
def codes(policy: Policy) -> Codes:
    """Validate the sample request with some fields replaced."""

    def run(**changes: Any) -> list[ReasonCode]:
        return validate_request(dataclasses.replace(VALID, **changes), policy, AS_OF)

    return run
