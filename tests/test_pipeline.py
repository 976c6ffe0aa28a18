"""The pipeline: batch ledger columns are the events lookups record, one by one; chunking changes no decision."""

from __future__ import annotations

import datetime
import gc
from pathlib import Path

import duckdb
import pytest

from taxmatch import pipeline
from taxmatch.engine.duckdb_engine import DuckDBEngine, request_input_table
from taxmatch.io.requests import read_requests
from taxmatch.pipeline import Accounting, ledger_columns, ledger_events
from taxmatch.records import Decision, Disclosure, MalformedRecord, Outcome, ReasonCode, RequestRecord
from taxmatch.settings import Policy
from taxmatch.synth import generate


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


def test_chunked_and_single_chunk_paths_decide_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch of more than one chunk is validated and scored on two threads; one chunk (a lookup)
    # on the calling thread. Same decisions, repeated ids across chunk borders included.
    data = tmp_path / "data"
    generate(data, people=300, requests=120, seed=3, as_of=datetime.date(2026, 11, 25))
    engine = DuckDBEngine(duckdb.connect())
    engine.load_master([data / "master.csv"], lambda problem: None)
    engine.fit_model()
    items = list(read_requests(data / "requests.csv"))
    items += items[5:9]  # repeated request ids, in later chunks than their first
    policy, as_of = Policy.default(), datetime.date(2026, 11, 25)
    whole = pipeline.decide_requests(engine, policy, as_of, items)
    one_by_one = [pipeline.decide_requests(engine, policy, as_of, [item])[0] for item in items[:40]]
    monkeypatch.setattr(pipeline, "MIN_ITEMS_TO_SPLIT", 10)
    in_two_processes = pipeline.decide_requests(engine, policy, as_of, items, processes=2)
    monkeypatch.setattr(pipeline, "SCORING_CHUNK_ITEMS", 7)
    chunked = pipeline.decide_requests(engine, policy, as_of, items)
    assert chunked == whole
    assert in_two_processes == whole
    assert one_by_one == whole[:40]
    assert {decision.outcome for decision in whole} == set(Outcome)
    assert sum(ReasonCode.DUPLICATE_REQUEST_ID in decision.reason_codes for decision in whole) >= 4


def test_the_cycle_collector_is_paused_for_a_batch_and_restored_after() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), pipeline._cyclic_collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed batch")
    assert gc.isenabled(), "back on after a failure too"
    gc.disable()
    try:
        with pipeline._cyclic_collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "a caller that had it off keeps it off"
    finally:
        gc.enable()


def test_validation_halves_build_the_scoring_input_of_what_they_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(tmp_path, people=200, requests=150, seed=4, as_of=datetime.date(2026, 11, 25))
    items = list(read_requests(tmp_path / "requests.csv"))
    items += items[10:14]  # valid requests whose repeated ids are rejected: their rows must go
    monkeypatch.setattr(pipeline, "MIN_ITEMS_TO_SPLIT", 10)
    policy, as_of = Policy.default(), datetime.date(2026, 11, 25)
    decisions: list[Decision | None] = [None] * len(items)
    to_score, inputs = pipeline._validate_chunk(items, 0, len(items), policy, as_of, set(), decisions, processes=2)
    assert inputs is not None
    assert inputs.equals(request_input_table(to_score))
    assert 0 < len(to_score) < len(items) - 4


def test_objects_made_while_paused_are_left_old_and_still_collectable() -> None:
    class Node:
        pass

    with pipeline._cyclic_collector_paused():
        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        young_before_leaving = gc.get_count()[0]
    assert young_before_leaving > 0
    assert gc.get_count()[0] < young_before_leaving, "promoted, not left for the next young collection"
    assert gc.get_freeze_count() == 0, "nothing left frozen out of collection"
    del cycle
    assert gc.collect() >= 1, "the cycle is still collected"
