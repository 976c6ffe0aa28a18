"""The server's database connection and the single decision path behind every route.

DuckDB allows one writer process per file: the server holds it. Writes (ledger appends,
batch chunks) and the engine's batch path, whose scratch tables have fixed names, go through
`Service.database()`, which serializes them with one lock. Lookups decide without it, each on
an engine over a cursor of its own (a pool of `lookup_threads`), and their ledger entries are
appended by group commit; long reads (ledger verification, snapshots) use the cursor of `reading()`.
Decisions always come from `pipeline.decide_requests`, the same function `taxmatch batch run`
uses, and each outcome is accounted in the ledger before it is answered.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import queue
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from taxmatch import pipeline
from taxmatch.api.limits import LEDGER_CHECKPOINT_LOOKUPS, LEDGER_CHECKPOINT_SECONDS, LOOKUP_THREADS
from taxmatch.database import DATABASE_ALIAS, open_database
from taxmatch.engine.interface import MatchingEngine, open_engine, prepare_for_lookups
from taxmatch.explain import ExplanationRecorder
from taxmatch.io.requests import Item
from taxmatch.ledger import (
    EventColumns,
    Ledger,
    LedgerEvent,
    VerifyResult,
    export_public_key,
    signing_key,
    verify_database,
)
from taxmatch.pipeline import decide_requests
from taxmatch.records import Decision
from taxmatch.settings import Policy, Workspace

LOOKUP_BATCH_ID = "lookup"


def skip_absent_pandas() -> bool:
    """Make ``import pandas`` fail at once in this process when pandas is not installed.

    DuckDB's Python binding tries ``import pandas`` for every Python value it converts (each
    statement parameter, each list element) to check whether it is a pandas object. Without
    pandas each try is a failed search of sys.path: ~0.1 ms a value, 1.5 ms for a ledger
    INSERT's 16 parameters and a large share of the engine's point reads. A ``None`` entry
    in sys.modules is Python's own "not importable" marker: the import fails immediately,
    exactly as it would have failed slowly. Only done when pandas cannot be found (so nothing
    that could import it loses it); returns whether the marker was set. Process-wide, so it
    is called by the server's entry point, not by library code.
    """
    if "pandas" in sys.modules or importlib.util.find_spec("pandas") is not None:
        return False
    sys.modules["pandas"] = None  # type: ignore[assignment]
    return True


@dataclass(frozen=True)
class Accounting:
    agency: str
    actor: str
    batch_id: str


class Service:
    def __init__(
        self,
        workspace: Workspace,
        *,
        checkpoint_lookups: int = LEDGER_CHECKPOINT_LOOKUPS,
        checkpoint_seconds: float = LEDGER_CHECKPOINT_SECONDS,
        lookup_threads: int = LOOKUP_THREADS,
    ) -> None:
        workspace.ensure()
        self.workspace = workspace
        self.policy: Policy = workspace.load_policy()
        opened = open_database(workspace)
        self.connection: duckdb.DuckDBPyConnection = opened.connection
        self._lock = threading.RLock()
        try:
            self.engine = open_engine(self.connection)
            self.ledger = Ledger(self.connection)
            self.ledger.ensure_schema()
            # A lookup's statements are a few index point reads: a second thread only adds a
            # hand-off per pipeline (~30% more CPU per lookup at 1M people). Batch chunks, which
            # do scan and join, get every thread back (`batch_threads`).
            found = self.connection.execute("SELECT current_setting('threads')").fetchone()
            self._batch_threads = int(found[0]) if found else 1
            self.connection.execute("SET threads = 1")
            # One engine per lookup thread, each on a cursor of its own: lookups decide in parallel
            # (DuckDB releases the GIL in its reads; each cursor reads its own MVCC snapshot).
            # Built here, one after the other: an engine's set-up writes macros to the catalog.
            self._lookup_cursors: list[duckdb.DuckDBPyConnection] = []  # every cursor, closed at close()
            self._lookup_engines: queue.SimpleQueue[MatchingEngine] = queue.SimpleQueue()
            self._reading_cursor = self._new_cursor()
            engines = [open_engine(self._new_cursor()) for _ in range(max(1, lookup_threads))]
            # The in-memory candidate index of the master, built once (with every thread: it reads
            # the whole of master_profiles) and shared by the lookup engines.
            with self.batch_threads():
                prepare_for_lookups(engines)
            for engine in engines:
                self._lookup_engines.put(engine)
        except BaseException:
            for cursor in getattr(self, "_lookup_cursors", []):
                cursor.close()
            self.connection.close()
            raise
        # Lookups whose ledger entries wait for the next group commit (`account_lookup`).
        # `_committing`: a leader is committing a group; the others wait on the condition, not on the
        # database lock (see `account_lookup`).
        self._pending_changed = threading.Condition(threading.Lock())
        self._pending: list[_PendingEntries] = []
        self._committing = False
        self._model_version: str | None = None
        self._closed = False
        self._reading_lock = threading.Lock()
        # (finished at, ledger state verified, result) of the last full verification.
        self._last_verification: tuple[float, tuple[object, ...], VerifyResult] | None = None
        # Lookups are signed in groups, not one by one: a checkpoint (Ed25519 signature plus
        # an INSERT) is taken in the transaction of the lookup that makes the unsigned run
        # reach `checkpoint_lookups` lookups or `checkpoint_seconds` of age, and at shutdown.
        self._checkpoint_lookups = checkpoint_lookups
        self._checkpoint_seconds = checkpoint_seconds
        self._unsigned_lookups = 0
        self._unsigned_since = 0.0  # time.monotonic() of the first unsigned lookup
        self._lookups_appended = 0  # every lookup entry this process appended (`verify_ledger`)
        try:
            self._sign_unsigned_tail()
        except BaseException:
            self.connection.close()
            raise

    def _sign_unsigned_tail(self) -> None:
        """Sign entries left unsigned by a previous process that did not stop cleanly (killed, crashed).

        They are durable and hash-chained already; the checkpoint bounds the unsigned tail
        to what this process appends since its last group checkpoint.
        """
        seq, _ = self.ledger.head()
        if seq > self.ledger.last_checkpoint_seq():
            with self.ledger.transaction():
                self.ledger.checkpoint(signing_key(self.workspace))
        else:
            self.ledger.adopt_signed_head()

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the workspace database, closed with the service."""
        cursor = self.connection.cursor()
        self._lookup_cursors.append(cursor)
        cursor.execute(f"USE {DATABASE_ALIAS}")  # a new connection starts in the in-memory base database
        return cursor

    @contextmanager
    def database(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Exclusive use of the connection for the duration of the block."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the service is closed")
            yield self.connection

    @contextmanager
    def batch_threads(self) -> Iterator[None]:
        """All of DuckDB's threads for the block (a batch chunk); the caller holds `database()`."""
        self.connection.execute(f"SET threads = {self._batch_threads}")
        try:
            yield
        finally:
            self.connection.execute("SET threads = 1")

    def model_version(self) -> str:
        """The fitted model's version; raises MasterNotLoadedError when nothing is loaded.

        Cached: the master cannot be reloaded while this process holds the database.
        """
        if self._model_version is None:
            with self.database():
                self._model_version, _ = self.engine.current_model()
        return self._model_version

    def events(self, items: Sequence[Item], decisions: Sequence[Decision], accounting: Accounting) -> list[LedgerEvent]:
        """The same ledger events `taxmatch batch run` records, from the key's identity."""
        recorded = pipeline.Accounting(accounting.agency, accounting.batch_id, accounting.actor, self.model_version())
        return pipeline.ledger_events(items, decisions, recorded, self.policy)

    def event_columns(
        self, items: Sequence[Item], decisions: Sequence[Decision], accounting: Accounting
    ) -> EventColumns:
        """`events` by column, for `Ledger.append_columns`: what a batch chunk records."""
        recorded = pipeline.Accounting(accounting.agency, accounting.batch_id, accounting.actor, self.model_version())
        return pipeline.ledger_columns(items, decisions, recorded, self.policy)

    def decide_and_account(
        self,
        as_of: datetime.date,
        items: Sequence[Item],
        accounting: Accounting,
        recorder: ExplanationRecorder | None = None,
    ) -> list[Decision]:
        """Decide on a lookup engine of this thread's own, then record every outcome in the ledger.

        Deciding holds no lock (several lookups decide at once, each on its own cursor); the
        ledger entries are appended by group commit (`account_lookup`). Returns only after the
        COMMIT that holds the entries, which DuckDB makes durable (WAL fsync) before it returns:
        an answered lookup is on disk, never only in memory.
        """
        decisions = self.decide_lookup(as_of, items, recorder)
        self.account_decisions(items, decisions, accounting)
        return decisions

    def decide_lookup(
        self, as_of: datetime.date, items: Sequence[Item], recorder: ExplanationRecorder | None = None
    ) -> list[Decision]:
        """The first half of `decide_and_account`: decide on a free lookup engine, record nothing.

        Whoever calls it must hand the decisions to `account_decisions` before answering.
        """
        self.model_version()
        if self._closed:
            raise RuntimeError("the service is closed")
        engine = self._lookup_engines.get()
        try:
            return decide_requests(engine, self.policy, as_of, items, observe=recorder)
        finally:
            self._lookup_engines.put(engine)

    def account_decisions(self, items: Sequence[Item], decisions: Sequence[Decision], accounting: Accounting) -> None:
        """The second half of `decide_and_account`: the ledger entries, committed (group commit)."""
        self.account_lookup(self.events(items, decisions, accounting), accounting.batch_id == LOOKUP_BATCH_ID)

    def account_lookup(self, events: list[LedgerEvent], lookup: bool) -> None:
        """Append ``events`` to the ledger, in one transaction with whatever other lookups are waiting.

        Group commit: a thread queues its entries and, while another thread (the leader) commits
        a group, waits; if that group held its entries it is done, otherwise it becomes the leader
        and commits every lookup queued meanwhile in one transaction (one WAL fsync for all). Each
        lookup's entries stay together, in queue order, and nobody returns before the COMMIT that
        holds its entries.
        """
        mine = _PendingEntries(events, lookup)
        with self._pending_changed:
            self._pending.append(mine)
            # Followers wait here while a leader commits, and are woken when it is done: a lookup
            # whose entries it committed returns at once, instead of queueing for the database lock
            # behind the next group's COMMIT (~20 ms with its fsync on a busy disk), which kept
            # groups at ~2 lookups under 16 clients.
            while self._committing and not mine.done:
                self._pending_changed.wait()
            if not mine.done:
                self._committing = True  # the leader: takes every lookup queued so far
                group, self._pending = self._pending, []
            else:
                group = []
        if group:
            try:
                with self.database():
                    self._commit_group(group)
            except BaseException as error:
                for pending in group:
                    pending.error = error
                raise
            finally:
                with self._pending_changed:
                    for pending in group:
                        pending.done = True
                    self._committing = False
                    self._pending_changed.notify_all()
        if mine.error is not None:
            raise RuntimeError("the ledger could not record the lookup") from mine.error

    def _commit_group(self, group: Sequence[_PendingEntries]) -> None:
        events = [event for pending in group for event in pending.events]
        lookups = sum(len(pending.events) for pending in group if pending.lookup)
        # Counted before the COMMIT, so that a verification whose snapshot holds these entries sees
        # them counted (`verify_ledger`); taken back if the transaction fails.
        self._lookups_appended += lookups
        try:
            with self.ledger.transaction():
                self.ledger.append(events)
                sign = bool(lookups) and self._lookups_due_for_checkpoint(lookups)
                if sign:
                    self.ledger.checkpoint(signing_key(self.workspace))
        except BaseException:
            self._lookups_appended -= lookups
            raise
        if sign:
            self._unsigned_lookups = 0
        elif lookups:
            if not self._unsigned_lookups:
                self._unsigned_since = time.monotonic()
            self._unsigned_lookups += lookups

    def explain(self, decisions: Sequence[Decision], recorder: ExplanationRecorder) -> list[dict[str, Any]]:
        """The explanations of decisions made with `decide_and_account(recorder=...)`."""
        with self.database():
            return pipeline.explanations(self.engine, self.policy, decisions, recorder)

    def _lookups_due_for_checkpoint(self, adding: int) -> bool:
        """Whether the unsigned lookups, with ``adding`` more, are due for a signed checkpoint."""
        if self._unsigned_lookups + adding >= self._checkpoint_lookups:
            return True
        return bool(self._unsigned_lookups) and time.monotonic() - self._unsigned_since >= self._checkpoint_seconds

    def checkpoint(self) -> None:
        """Sign the ledger head (after a batch, and at shutdown for the lookups since)."""
        with self.database(), self.ledger.transaction():
            self.ledger.checkpoint(signing_key(self.workspace))
            self._unsigned_lookups = 0

    def sign_own_tail(self, wait_seconds: float | None = None) -> bool:
        """Sign this process's own lookups and batch chunks since its last checkpoint.

        It wrote them, and they are unsigned only because signing is grouped; entries it did not
        write stay unsigned and fail a verification. Quick (one checkpoint, under the write lock)
        and done before a verification or a ledger snapshot, so both meet the fail-closed rule.
        With `wait_seconds`, gives up (False) when the write lock stays busy that long (a long
        batch chunk): a verification must not wait for the writers.
        """
        if not self._lock.acquire(timeout=-1 if wait_seconds is None else wait_seconds):
            return False
        try:
            if self._closed:
                raise RuntimeError("the service is closed")
            with self.ledger.transaction():
                if self.ledger.checkpoint_own_tail(signing_key(self.workspace)) is not None:
                    self._unsigned_lookups = 0
        finally:
            self._lock.release()
        return True

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The long-read cursor, for one reader at a time (a ledger verification or snapshot).

        A connection of its own to the same database, made at start: DuckDB runs its transaction
        on its own snapshot (MVCC), so a read on it never takes the write lock, never waits for a
        batch chunk and never sees half a lookup's transaction.
        """
        with self._reading_lock:
            if self._closed:
                raise RuntimeError("the service is closed")
            yield self._reading_cursor

    def verify_ledger(self, reuse_seconds: float = 0.0) -> VerifyResult:
        """Verify the whole ledger on the long-read cursor, one verification at a time.

        Never holds the write lock: a verification of a large ledger runs beside lookups and
        batch chunks. A caller that waited for a running verification takes its result if it is
        at most ``reuse_seconds`` old; any caller takes the last result while the ledger has not
        changed (same head, same checkpoints). An auditor looping on the route thus costs one
        verification per ``reuse_seconds``, not one per call.
        """
        asked = time.monotonic()
        # The writers busy: this process's own grouped lookups, which it could not sign now, are the
        # only unsigned tail it vouches for; anything more fails as the rule says.
        appended_before = self._lookups_appended
        own_unsigned = 0 if self.sign_own_tail(wait_seconds=SIGN_WAIT_SECONDS) else self._unsigned_lookups
        with self.reading() as cursor:
            last = self._last_verification
            if last is not None and reuse_seconds > 0 and asked - last[0] <= reuse_seconds:
                return last[2]
            public_key = export_public_key(self.workspace)
            cursor.execute("BEGIN TRANSACTION")  # one snapshot for the state and the verification
            try:
                # Lookups keep committing between the signing above and this snapshot (under load,
                # always): their entries, this process's own, may be in it unsigned. Counted after
                # the snapshot began, so every one it can hold is counted; nothing else is allowed.
                own_unsigned += self._lookups_appended - appended_before
                state = self._ledger_state(cursor)
                unchanged = last is not None and last[1] == state
                result = (
                    last[2]
                    if last is not None and unchanged
                    else _verify_allowing_own_tail(cursor, public_key, own_unsigned)
                )
            finally:
                cursor.execute("COMMIT")
            self._last_verification = (time.monotonic(), state, result)
            return result

    @staticmethod
    def _ledger_state(cursor: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
        """What a verification depends on: the head entry and the newest checkpoint (cheap index reads)."""
        reader = Ledger(cursor)
        return (*reader.head(), reader.last_checkpoint_seq(), len(reader.checkpoints()))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                if self._unsigned_lookups:
                    with self.ledger.transaction():
                        self.ledger.checkpoint(signing_key(self.workspace))
                self._closed = True
                with self._reading_lock:  # a verification still running finishes first
                    pass
                for cursor in self._lookup_cursors:
                    cursor.close()
                self.connection.close()


@dataclass
class _PendingEntries:
    """One lookup's ledger events waiting for a group commit."""

    events: list[LedgerEvent]
    lookup: bool
    done: bool = False
    error: BaseException | None = None


# How long a verification waits for the write lock to sign the server's own tail before it verifies
# without (a batch chunk can hold the lock for seconds; lookups for milliseconds).
SIGN_WAIT_SECONDS = 1.0


def _verify_allowing_own_tail(cursor: duckdb.DuckDBPyConnection, public_key: bytes, own_unsigned: int) -> VerifyResult:
    """The fail-closed check, except for at most `own_unsigned` unsigned entries at the end."""
    if not own_unsigned:
        return verify_database(cursor, public_key)
    result = verify_database(cursor, public_key, allow_unsigned_tail=True)
    if result.ok and result.unverified > own_unsigned:
        return dataclasses.replace(
            result,
            ok=False,
            problem=f"{result.unverified} entries after the last signed checkpoint; this server wrote {own_unsigned}",
        )
    return result
