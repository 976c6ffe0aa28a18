"""Shared helpers of the ledger tests (a unique module name, unlike conftest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from taxmatch.ledger import LedgerEvent
from taxmatch.records import Outcome


def make_events(count: int, start: int = 0) -> list[LedgerEvent]:
    events = []
    for i in range(start, start + count):
        if i % 3 == 0:
            events.append(
                LedgerEvent(
                    agency="ICE",
                    batch_id="batch-1",
                    request_id=f"r{i}",
                    outcome=Outcome.DISCLOSED,
                    statute="8 U.S.C. 1326",
                    fields_disclosed=("tin_last4", "first_name", "last_name", "street", "city", "state", "zip"),
                    taxpayer_tin=f"{900000000 + i:09d}",
                    policy_version="policy-test",
                    model_version="model-test",
                )
            )
        else:
            events.append(
                LedgerEvent(
                    agency="ICE",
                    batch_id="batch-1",
                    request_id=f"r{i}",
                    outcome=Outcome.REJECTED if i % 3 == 1 else Outcome.NOT_MATCHED,
                    reason_codes=("INVALID_NAME", "INVALID_ZIP") if i % 3 == 1 else ("AMBIGUOUS",),
                    statute="8 USC 1326 — Müller",
                    policy_version="policy-test",
                    model_version="model-test",
                )
            )
    return events


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
