"""The server's Service in process: verification beside the write lock, group commit of lookups."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from taxmatch.api.service import LOOKUP_BATCH_ID, Accounting, Service
from taxmatch.database import open_database
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.io.requests import Item, outcome_request_id, read_requests
from taxmatch.ledger import LedgerEvent
from taxmatch.pipeline import decide_requests
from taxmatch.records import Outcome
from taxmatch.settings import Workspace
from taxmatch.synth import generate


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    opened = Service(Workspace(tmp_path / "home"), lookup_threads=2)
    yield opened
    opened.close()


def lookup_events(name: str, count: int) -> list[LedgerEvent]:
    return [
        LedgerEvent(agency="ICE", batch_id="lookup", request_id=f"{name}-{index}", outcome="NOT_MATCHED",
                    reason_codes=("NO_CANDIDATE",), actor="test")
        for index in range(count)
    ]  # fmt: skip


def test_verification_runs_while_the_write_lock_is_held(service: Service) -> None:
    """Before, verify took the lock every lookup needs: a long verification stopped the lookups."""
    service.account_lookup(lookup_events("before", 5), True)
    results: list[bool] = []
    with service.database():  # what a batch chunk or a ledger commit holds
        verifier = threading.Thread(target=lambda: results.append(service.verify_ledger().ok))
        verifier.start()
        verifier.join(timeout=30)
        finished_under_the_lock = not verifier.is_alive()
    verifier.join()
    assert finished_under_the_lock
    assert results == [True]


def test_group_commit_keeps_each_lookups_entries_together_and_the_chain_intact(service: Service) -> None:
    failures: list[BaseException] = []

    def client(number: int) -> None:
        try:
            for round_ in range(15):
                service.account_lookup(lookup_events(f"c{number}-r{round_}", 3), True)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    rows = service.connection.execute("SELECT seq, request_id FROM ledger_entries ORDER BY seq").fetchall()
    assert len(rows) == 8 * 15 * 3
    lookups = [request_id.rsplit("-", 1)[0] for _, request_id in rows]
    for start in range(0, len(lookups), 3):
        assert len(set(lookups[start : start + 3])) == 1, "a lookup's entries were split"
    assert len(set(lookups)) == 8 * 15
    result = service.verify_ledger()
    assert result.ok and result.entries == len(rows)


def test_verification_result_is_reused_only_while_it_holds(service: Service) -> None:
    service.account_lookup(lookup_events("a", 2), True)
    first = service.verify_ledger()
    assert service.verify_ledger() is first  # nothing changed
    service.account_lookup(lookup_events("b", 2), True)
    assert service.verify_ledger(reuse_seconds=3600) is first  # young enough, by request
    fresh = service.verify_ledger()
    assert fresh.entries == first.entries + 2


def test_a_lookup_decided_apart_is_recorded_by_its_accounting_alone_and_as_a_batch_decides_it(tmp_path: Path) -> None:
    """The server decides a lookup on a lookup thread and records it on an accounting thread (so
    that a lookup waiting for its group commit leaves its engine to the next): the two halves must
    record nothing early and decide exactly what the batch path decides."""
    workspace = Workspace(tmp_path / "home")
    workspace.ensure()
    as_of = datetime.date(2026, 11, 25)
    generate(tmp_path / "data", people=300, requests=40, seed=5, as_of=as_of)
    opened = open_database(workspace)
    try:
        engine = DuckDBEngine(opened.connection)
        engine.load_master([tmp_path / "data" / "master.csv"], lambda problem: None)
        engine.fit_model()
        # Each request id once: a repeat is DUPLICATE_REQUEST_ID within a batch, a new lookup alone.
        items: list[Item] = []
        seen: set[str] = set()
        for item in read_requests(tmp_path / "data" / "requests.csv"):
            if outcome_request_id(item) not in seen:
                seen.add(outcome_request_id(item))
                items.append(item)
        batch = decide_requests(engine, workspace.load_policy(), as_of, items)
    finally:
        opened.connection.close()
    accounting = Accounting(agency="ICE", actor="api:test", batch_id=LOOKUP_BATCH_ID)
    service = Service(workspace, lookup_threads=1)
    try:
        entries = "SELECT count(*) FROM ledger_entries WHERE batch_id = 'lookup'"
        decided = [service.decide_lookup(as_of, [item]) for item in items]
        assert service.connection.execute(entries).fetchone() == (0,), "deciding alone recorded something"
        assert [decision for (decision,) in decided] == batch
        assert {Outcome.DISCLOSED, Outcome.NOT_MATCHED} <= {decision.outcome for decision in batch}
        for item, decisions in zip(items, decided, strict=True):
            service.account_decisions([item], decisions, accounting)
        rows = service.connection.execute(
            "SELECT request_id, outcome FROM ledger_entries WHERE batch_id = 'lookup' ORDER BY seq"
        ).fetchall()
        assert rows == [(decision.request_id, decision.outcome.value) for decision in batch]
        assert service.verify_ledger().ok
    finally:
        service.close()


def test_a_lookup_whose_group_committed_returns_while_the_next_group_commits(service: Service) -> None:
    """Before, lookups waited for the database lock to learn that their group had committed, and the
    next group's leader could take the lock first: they waited for its COMMIT too (groups of ~2
    under 16 clients). Now they wait on a condition that the leader signals when its group is done."""
    gates = [threading.Event() for _ in range(3)]
    started: list[int] = []
    commit_group = service._commit_group

    def gated(group: Sequence[Any]) -> None:
        number = len(started)
        started.append(len(group))
        gates[number].wait(30)
        commit_group(group)

    service._commit_group = gated  # type: ignore[method-assign]
    finished: list[str] = []

    def lookup(name: str) -> None:
        service.account_lookup(lookup_events(name, 1), True)
        finished.append(name)

    def start(name: str) -> threading.Thread:
        thread = threading.Thread(target=lookup, args=(name,))
        thread.start()
        return thread

    def wait_for(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert condition()

    threads = [start("first")]
    wait_for(lambda: len(started) == 1)  # the first group commits (held at its gate)
    threads += [start("a"), start("b")]
    wait_for(lambda: len(service._pending) == 2)  # both queued behind it: the next group
    gates[0].set()
    wait_for(lambda: len(started) == 2)
    assert started == [1, 2]
    threads.append(start("c"))  # queued while a and b commit: the group after
    wait_for(lambda: len(service._pending) == 1)
    gates[1].set()
    wait_for(lambda: len(started) == 3)
    # c's group is held at its gate; a and b, committed, have returned without waiting for it.
    wait_for(lambda: {"first", "a", "b"} <= set(finished))
    assert "c" not in finished
    gates[2].set()
    for thread in threads:
        thread.join(30)
    assert sorted(finished) == ["a", "b", "c", "first"]
    assert service.verify_ledger().entries == 4


def test_verification_while_lookups_keep_committing_is_ok(service: Service) -> None:
    """Lookups committed between the verification's signing of the tail and its snapshot are the
    server's own: before, they made `ok` false under load (an auditor saw a false alarm)."""
    service.account_lookup(lookup_events("first", 1), True)
    stop = threading.Event()

    def lookups() -> None:
        number = 0
        while not stop.is_set():
            service.account_lookup(lookup_events(f"busy{number}", 1), True)
            number += 1

    writer = threading.Thread(target=lookups)
    writer.start()
    try:
        results = [service.verify_ledger() for _ in range(15)]
    finally:
        stop.set()
        writer.join(30)
    assert [result.problem for result in results if not result.ok] == []
    assert results[-1].entries > results[0].entries > 1
