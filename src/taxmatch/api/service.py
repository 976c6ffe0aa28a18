"""The server's one database connection and the single decision path behind every route.

DuckDB allows one writer process per file, and the engine's scorer uses fixed scratch
table names, so all database work in the server goes through `Service.database()`, which
serializes it with one lock. Decisions always come from `pipeline.decide_requests`, the
same function `taxmatch batch run` uses, and each outcome is accounted in the ledger.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from taxmatch.database import open_database
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.io.requests import Item
from taxmatch.ledger import Ledger, LedgerEvent, VerifyResult, export_public_key, signing_key, verify_database
from taxmatch.pipeline import decide_requests
from taxmatch.records import Decision, RequestRecord
from taxmatch.settings import Policy, Workspace

LOOKUP_BATCH_ID = "lookup"


@dataclass(frozen=True)
class Accounting:
    agency: str
    actor: str
    batch_id: str


class Service:
    def __init__(self, workspace: Workspace) -> None:
        workspace.ensure()
        self.workspace = workspace
        self.policy: Policy = workspace.load_policy()
        opened = open_database(workspace)
        self.connection: duckdb.DuckDBPyConnection = opened.connection
        self._lock = threading.RLock()
        try:
            self.engine = DuckDBEngine(self.connection)
            self.ledger = Ledger(self.connection)
            self.ledger.ensure_schema()
        except BaseException:
            self.connection.close()
            raise
        self._model_version: str | None = None
        self._closed = False
        # Lookups appended since the last signed checkpoint (signed at shutdown).
        self._unsigned_lookups = False

    @contextmanager
    def database(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Exclusive use of the connection for the duration of the block."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the service is closed")
            yield self.connection

    def model_version(self) -> str:
        """The fitted model's version; raises MasterNotLoadedError when nothing is loaded.

        Cached: the master cannot be reloaded while this process holds the database.
        """
        if self._model_version is None:
            with self.database():
                self._model_version, _ = self.engine.current_model()
        return self._model_version

    def events(self, items: Sequence[Item], decisions: Sequence[Decision], accounting: Accounting) -> list[LedgerEvent]:
        model_version = self.model_version()
        return [
            LedgerEvent.from_decision(
                decision,
                agency=accounting.agency,
                batch_id=accounting.batch_id,
                statute=(item.statute or "") if isinstance(item, RequestRecord) else "",
                policy_version=self.policy.version,
                model_version=model_version,
                actor=accounting.actor,
                policy=self.policy,
            )
            for item, decision in zip(items, decisions, strict=True)
        ]

    def decide_and_account(self, as_of: datetime.date, items: Sequence[Item], accounting: Accounting) -> list[Decision]:
        """Decide and record every outcome in the ledger, in one hold of the lock."""
        self.model_version()
        with self.database():
            decisions = decide_requests(self.engine, self.policy, as_of, items)
            events = self.events(items, decisions, accounting)
            with self.ledger.transaction():
                self.ledger.append(events)
            if accounting.batch_id == LOOKUP_BATCH_ID:
                self._unsigned_lookups = True
        return decisions

    def checkpoint(self) -> None:
        """Sign the ledger head (after a batch, and at shutdown for the lookups since)."""
        with self.database(), self.ledger.transaction():
            self.ledger.checkpoint(signing_key(self.workspace))
            self._unsigned_lookups = False

    def verify_ledger(self) -> VerifyResult:
        public_key = export_public_key(self.workspace)
        with self.database() as connection:
            return verify_database(connection, public_key)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                if self._unsigned_lookups:
                    with self.ledger.transaction():
                        self.ledger.checkpoint(signing_key(self.workspace))
                self._closed = True
                self.connection.close()
