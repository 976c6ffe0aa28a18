"""The pipeline's accounting: batch ledger columns are the events lookups record, one by one."""

from __future__ import annotations

import pytest

from taxmatch.pipeline import Accounting, ledger_columns, ledger_events
from taxmatch.records import Decision, Disclosure, MalformedRecord, Outcome, ReasonCode, RequestRecord
from taxmatch.settings import Policy


def disclosure(tin: str) -> Disclosure:
    return Disclosure(
        tin_last4=tin[-4:], first_name="ANA", middle_name="", last_name="DIAZ", suffix="", street="1 MAIN ST",
        unit="", city="AUSTIN", state="TX", zip="78701", tax_year=2023, match_probability=0.9999,
        evidence="name=exact", tin=tin, phone="5125550100",
    )  # fmt: skip


@pytest.mark.parametrize(
    "policy",
    [Policy.default(), Policy.from_mapping({"disclose_phone": True, "disclose_full_tin": True}, version="generous")],
)
def test_ledger_columns_are_the_ledger_events(policy: Policy) -> None:
    items = [
        RequestRecord("r1", statute="8 U.S.C. 1326"),
        RequestRecord("r2", statute=None),
        MalformedRecord("r3", 4, "bad quoting"),
        RequestRecord("r4", statute="8 USC 1325"),
        RequestRecord("r5", statute="8 U.S.C. 1326"),
        RequestRecord("r1", statute="8 U.S.C. 1326"),
    ]
    decisions = [
        Decision("r1", Outcome.DISCLOSED, disclosure=disclosure("123456789")),
        Decision("r2", Outcome.REJECTED, (ReasonCode.MISSING_STATUTE, ReasonCode.INVALID_ZIP)),
        Decision("r3", Outcome.REJECTED, (ReasonCode.MALFORMED_RECORD,), detail="bad quoting"),
        Decision("r4", Outcome.NOT_MATCHED, (ReasonCode.AMBIGUOUS,)),
        # Not produced by decide_requests, but accounted the same way by both paths: nothing was disclosed.
        Decision("r5", Outcome.DISCLOSED),
        Decision("r1", Outcome.REJECTED, (ReasonCode.DUPLICATE_REQUEST_ID,)),
    ]
    accounting = Accounting("ICE", "b-1", "api:k1", "model-1")
    columns = ledger_columns(items, decisions, accounting, policy)
    events = ledger_events(items, decisions, accounting, policy)
    assert columns.events() == events
    assert [event.taxpayer_tin for event in events] == ["123456789", "", "", "", "", ""]
    assert events[0].fields_disclosed[0] == ("tin" if policy.disclose_full_tin else "tin_last4")
    assert [event.statute for event in events] == [
        "8 U.S.C. 1326",
        "",
        "",
        "8 USC 1325",
        "8 U.S.C. 1326",
        "8 U.S.C. 1326",
    ]
