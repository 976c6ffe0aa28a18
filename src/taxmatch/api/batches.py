"""Batches submitted over HTTP: accepted at once, decided in a background thread, resumable.

Durability: the request body, the cursor (`processed`) and every decided chunk live in
the encrypted workspace database (tables ``api_batches`` and ``api_batch_decisions``).
Each chunk's decisions, its ledger entries and the advanced cursor are committed in one
transaction, so a server killed at any moment resumes at the first undecided record:
no outcome is lost and none is decided (or accounted) twice. When the last chunk is
committed, the outcome files are written with `OutcomeWriter` into
``<home>/batches/<batch_id>/`` and the body and interim decisions are deleted.

Duplicate request ids are found over the whole batch before it is cut into chunks, so a
repeat in a later chunk is `DUPLICATE_REQUEST_ID` exactly as in `taxmatch batch run`.

The same batch twice (same agency, body, as-of date, policy and model: its `batch_identity`)
is refused while the first is queued, running or done (`BatchAlreadySubmittedError`, a 409
naming it), as `batch run` refuses a batch id that completed. `rerun` records a new batch,
``<first id>-r<N>``, whose id names the batch it repeats in every ledger entry.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

if TYPE_CHECKING:
    import duckdb

from taxmatch import __version__
from taxmatch.agency import same_agency
from taxmatch.api.service import Accounting, Service
from taxmatch.io.outcome_formats import OUTPUT_FORMATS, OutputFormat, TableOutcomeWriter, file_name
from taxmatch.io.outcomes import MANIFEST_FILENAME, OUTCOME_FILENAMES, OutcomeWriter, sha256_file, write_manifest
from taxmatch.io.requests import Item, outcome_request_id, read_requests_from_text
from taxmatch.ledger.batch_explanations import ScoringRecorder, save_scoring
from taxmatch.ledger.batch_runs import repeated_batch_id, rerun_batch_id
from taxmatch.ledger.batches import BatchSummary, batch_detail, list_batches, outcome_file_name, recorded_manifest
from taxmatch.pipeline import decide_requests
from taxmatch.records import Decision, Disclosure, MalformedRecord, Outcome, ReasonCode

logger = logging.getLogger(__name__)

BatchKind = Literal["csv", "ndjson"]
Status = Literal["queued", "running", "done", "failed"]
OUTPUT_FILES: tuple[str, ...] = ("disclosed.csv", "rejected.csv", "unmatched.csv")

_COUNT_KEY = {Outcome.DISCLOSED: "disclosed", Outcome.REJECTED: "rejected", Outcome.NOT_MATCHED: "unmatched"}

SCHEMA_SQL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS api_batches (
        batch_id VARCHAR, agency VARCHAR, key_id VARCHAR, kind VARCHAR, as_of DATE, created VARCHAR,
        total BIGINT, processed BIGINT, disclosed BIGINT, rejected BIGINT, unmatched BIGINT,
        status VARCHAR, error VARCHAR, body_sha256 VARCHAR, body BLOB)""",
    "CREATE TABLE IF NOT EXISTS api_batch_decisions (batch_id VARCHAR, position BIGINT, decision VARCHAR)",
    # Added after the table: what makes two submissions the same batch (`batch_identity`).
    "ALTER TABLE api_batches ADD COLUMN IF NOT EXISTS identity VARCHAR",
    # Added after the table first shipped: a workspace from before gets the column, every old batch CSV.
    "ALTER TABLE api_batches ADD COLUMN IF NOT EXISTS output_format VARCHAR DEFAULT 'csv'",
)
_COLUMNS = (
    "batch_id, agency, key_id, kind, as_of, created, total, processed, disclosed, rejected, unmatched, status, "
    "error, body_sha256, body, identity"
)


class BatchAlreadySubmittedError(Exception):
    """The same batch was submitted before and is not failed: `existing` is its latest run."""

    def __init__(self, existing: BatchState) -> None:
        super().__init__(
            f"this batch (same body, agency, as-of date, policy and model) is already {existing.status} as "
            f"{existing.batch_id}; submit it with ?rerun=true to record a new batch that repeats it"
        )
        self.existing = existing


def batch_identity(agency: str, as_of: datetime.date, kind: str, body_sha256: str, policy: str, model: str) -> str:
    """Two submissions with the same identity would decide the same requests the same way."""
    material = "|".join([agency, as_of.isoformat(), kind, body_sha256, policy, model])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass
class BatchState:
    """What the status route reports; kept in memory so polling never waits for the database."""

    batch_id: str
    agency: str
    key_id: str
    kind: BatchKind
    as_of: datetime.date
    created: str
    total: int
    processed: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"disclosed": 0, "rejected": 0, "unmatched": 0})
    status: Status = "queued"
    error: str = ""
    output_format: OutputFormat = "csv"
    # A batch run from the command line (`taxmatch batch run --agency`): where its files are.
    cli_out_dir: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "processed": self.processed,
            "total": self.total,
            "counts": dict(self.counts),
            "as_of": self.as_of.isoformat(),
            "created": self.created,
            "format": self.output_format,
            **({"error": self.error} if self.error else {}),
        }

    def file_names(self) -> tuple[str, ...]:
        """The outcome files of this batch, in its format, and its manifest."""
        return (*(file_name(outcome, self.output_format) for outcome in OUTCOME_FILENAMES), MANIFEST_FILENAME)


def _merged_batch(con: duckdb.DuckDBPyConnection, batch_id: str, agency: str) -> list[BatchSummary]:
    detail = batch_detail(con, batch_id, agency=agency)
    return [detail.summary] if detail is not None else []


def parse_body(body: bytes, kind: BatchKind) -> list[Item]:
    """Every record of a body, via the same readers as `batch run` (RequestFileError if unreadable)."""
    return list(read_requests_from_text(body, kind))


def duplicate_flags(items: Sequence[Item]) -> list[bool]:
    """Which items `decide_requests` would call DUPLICATE_REQUEST_ID if given the whole batch at once."""
    seen: set[str] = set()
    flags = [False] * len(items)
    for index, item in enumerate(items):
        if isinstance(item, MalformedRecord):
            if item.request_id:
                seen.add(item.request_id)
            continue
        request_id = outcome_request_id(item)
        if request_id in seen:
            flags[index] = True
        else:
            seen.add(request_id)
    return flags


def decision_to_json(decision: Decision) -> str:
    return json.dumps(
        {
            "request_id": decision.request_id,
            "outcome": decision.outcome.value,
            "reason_codes": [code.value for code in decision.reason_codes],
            "detail": decision.detail,
            "disclosure": None if decision.disclosure is None else asdict(decision.disclosure),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def decision_from_json(text: str) -> Decision:
    data = json.loads(text)
    disclosure = None if data["disclosure"] is None else Disclosure(**data["disclosure"])
    return Decision(
        request_id=data["request_id"],
        outcome=Outcome(data["outcome"]),
        reason_codes=tuple(ReasonCode(code) for code in data["reason_codes"]),
        disclosure=disclosure,
        detail=data["detail"],
    )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class BatchManager:
    def __init__(self, service: Service, chunk_records: int, chunk_delay_seconds: float = 0.0) -> None:
        self.service = service
        self.chunk_records = max(1, chunk_records)
        self.chunk_delay_seconds = chunk_delay_seconds
        self._states: dict[str, BatchState] = {}
        self._states_lock = threading.Lock()
        self._items: dict[str, list[Item]] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._submit_lock = threading.Lock()
        with service.database() as con:
            for statement in SCHEMA_SQL:
                con.execute(statement)

    @property
    def out_root(self) -> Path:
        return self.service.workspace.batches_dir

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Load every known batch and queue the unfinished ones (resume after a restart)."""
        with self.service.database() as con:
            rows = con.execute(
                "SELECT batch_id, agency, key_id, kind, as_of, created, total, processed, disclosed, rejected, "
                "unmatched, status, error, output_format FROM api_batches ORDER BY created, batch_id"
            ).fetchall()
        for row in rows:
            state = BatchState(
                batch_id=str(row[0]),
                agency=str(row[1]),
                key_id=str(row[2]),
                kind="ndjson" if row[3] == "ndjson" else "csv",
                as_of=row[4],
                created=str(row[5]),
                total=int(row[6]),
                processed=int(row[7]),
                counts={"disclosed": int(row[8]), "rejected": int(row[9]), "unmatched": int(row[10])},
                status=str(row[11]),  # type: ignore[arg-type]
                error=str(row[12] or ""),
                output_format=row[13] if row[13] in OUTPUT_FORMATS else "csv",
            )
            if state.status == "running":
                state.status = "queued"
            with self._states_lock:
                self._states[state.batch_id] = state
            if state.status == "queued":
                self._queue.put(state.batch_id)
        self._thread = threading.Thread(target=self._work, name="taxmatch-batches", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current chunk; an unfinished batch resumes at the next start."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- queries ------------------------------------------------------------------------------

    def get(self, batch_id: str, agency: str) -> BatchState | None:
        """The batch if it belongs to `agency`; another agency's batch is indistinguishable from none.

        Batches run from the command line for the agency are its batches too (`_cli_batches`)."""
        with self._states_lock:
            state = self._states.get(batch_id)
            if state is not None:
                if not same_agency(state.agency, agency):
                    return None
                return BatchState(**{**asdict(state), "counts": dict(state.counts)})
        found = self._cli_batches(agency, batch_id)
        return found[0] if found else None

    def list_for_agency(self, agency: str) -> list[BatchState]:
        """The agency's batches (any letter case of its name), over HTTP and from the command line,
        newest first; the id breaks ties."""
        with self._states_lock:
            found = [
                BatchState(**{**asdict(state), "counts": dict(state.counts)})
                for state in self._states.values()
                if same_agency(state.agency, agency)
            ]
        found += self._cli_batches(agency)
        return sorted(found, key=lambda state: (state.created, state.batch_id), reverse=True)

    def _cli_batches(self, agency: str, batch_id: str | None = None) -> list[BatchState]:
        """The agency's batches that the ledger accounts for and that were not submitted over HTTP."""
        states = []
        with self.service.database() as con:
            if batch_id is not None:
                found = _merged_batch(con, batch_id, agency)
            else:
                found, _ = list_batches(con, agency=agency)
            for summary in found:
                if summary.source != "cli":
                    continue
                directory, manifest = recorded_manifest(con, summary.batch_id, self.out_root)
                as_of = (manifest or {}).get("as_of") or summary.started[:10]
                output_format = outcome_file_name(manifest, "disclosed").rsplit(".", 1)[1]
                states.append(
                    BatchState(
                        summary.batch_id, summary.agency, "", "csv", datetime.date.fromisoformat(str(as_of)),
                        summary.started, summary.total, summary.processed, dict(summary.counts), "done",
                        output_format=output_format if output_format in OUTPUT_FORMATS else "csv",
                        cli_out_dir=str(directory or ""),
                    )
                )  # fmt: skip
        return states

    def active_for_key(self, key_id: str) -> int:
        with self._states_lock:
            return sum(1 for s in self._states.values() if s.key_id == key_id and s.status in ("queued", "running"))

    def output_path(self, batch_id: str, name: str, state: BatchState | None = None) -> Path:
        if state is not None and state.cli_out_dir:
            return Path(state.cli_out_dir) / name
        return self.out_root / batch_id / name

    # ---- submission ---------------------------------------------------------------------------

    def submit(
        self,
        agency: str,
        key_id: str,
        kind: BatchKind,
        body: bytes,
        items: list[Item],
        as_of: datetime.date,
        output_format: OutputFormat = "csv",
        rerun: bool = False,
    ) -> BatchState:
        """Queue a batch; `BatchAlreadySubmittedError` if the same batch is not failed, unless `rerun`."""
        body_sha256 = hashlib.sha256(body).hexdigest()
        service = self.service
        identity = batch_identity(agency, as_of, kind, body_sha256, service.policy.version, service.model_version())
        with self._submit_lock:  # two identical submissions at once: one is the first, the other its repeat
            with service.database() as con:
                rows = con.execute(
                    "SELECT batch_id, status FROM api_batches WHERE identity = ? ORDER BY created, batch_id",
                    [identity],
                ).fetchall()
            alive = [str(batch_id) for batch_id, status in rows if status != "failed"]
            batch_id = "b-" + secrets.token_hex(8)
            if alive:
                if not rerun:
                    existing = self.get(alive[-1], agency)
                    assert existing is not None
                    raise BatchAlreadySubmittedError(existing)
                original = next((known for known in alive if repeated_batch_id(known) is None), alive[0])
                repeats = sum(1 for known, _ in rows if repeated_batch_id(str(known)) == original)
                batch_id = rerun_batch_id(original, repeats + 1)
            state = BatchState(
                batch_id, agency, key_id, kind, as_of, _now(), total=len(items), output_format=output_format
            )
            with service.database() as con:
                con.execute(
                    f"INSERT INTO api_batches ({_COLUMNS}, output_format) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 'queued', '', ?, ?, ?, ?)",
                    [
                        batch_id,
                        agency,
                        key_id,
                        kind,
                        as_of,
                        state.created,
                        len(items),
                        body_sha256,
                        body,
                        identity,
                        output_format,
                    ],
                )
        self._items[batch_id] = items
        with self._states_lock:
            self._states[batch_id] = state
        self._queue.put(batch_id)
        return state

    # ---- the worker ---------------------------------------------------------------------------

    def _set(self, batch_id: str, **changes: Any) -> None:
        with self._states_lock:
            state = self._states[batch_id]
            for name, value in changes.items():
                setattr(state, name, value)

    def _work(self) -> None:
        while not self._stop.is_set():
            batch_id = self._queue.get()
            if batch_id is None:
                return
            try:
                self._process(batch_id)
            except Exception as error:  # a failed batch must not stop the worker for everyone else
                logger.exception("batch %s failed", batch_id)
                message = f"{type(error).__name__}"
                self._set(batch_id, status="failed", error=message)
                try:
                    with self.service.database() as con:
                        con.execute(
                            "UPDATE api_batches SET status = 'failed', error = ? WHERE batch_id = ?",
                            [message, batch_id],
                        )
                except Exception:
                    logger.exception("could not record the failure of batch %s", batch_id)

    def _load_items(self, batch_id: str, kind: BatchKind) -> list[Item]:
        cached = self._items.pop(batch_id, None)
        if cached is not None:
            return cached
        with self.service.database() as con:
            row = con.execute("SELECT body FROM api_batches WHERE batch_id = ?", [batch_id]).fetchone()
        assert row is not None and row[0] is not None, f"batch {batch_id} has no stored body"
        return parse_body(bytes(row[0]), kind)

    def _process(self, batch_id: str) -> None:
        with self._states_lock:
            state = self._states[batch_id]
            agency, key_id, kind, as_of = state.agency, state.key_id, state.kind, state.as_of
            output_format = state.output_format
            position, counts = state.processed, dict(state.counts)
        self._set(batch_id, status="running")
        items = self._load_items(batch_id, kind)
        duplicates = duplicate_flags(items)
        accounting = Accounting(agency=agency, actor=f"api:{key_id}", batch_id=batch_id)
        service = self.service
        model_version = service.model_version()
        scoring = ScoringRecorder()  # what each scored request was decided from (ledger/batch_explanations.py)
        while position < len(items):
            if self._stop.is_set():
                return
            end = min(position + self.chunk_records, len(items))
            chunk = items[position:end]
            with service.database() as con:
                with service.batch_threads():
                    decisions = self._decide_chunk(chunk, duplicates[position:end], as_of, position, scoring)
                events = service.event_columns(chunk, decisions, accounting)
                for decision in decisions:
                    counts[_COUNT_KEY[decision.outcome]] += 1
                table = pa.table(
                    {
                        "batch_id": pa.array([batch_id] * len(decisions), type=pa.string()),
                        "position": pa.array(range(position, end), type=pa.int64()),
                        "decision": pa.array([decision_to_json(d) for d in decisions], type=pa.string()),
                    }
                )
                with service.ledger.transaction():
                    service.ledger.append_columns(events)
                    if scoring.scored:
                        save_scoring(con, batch_id, scoring, model_version)
                    con.register("api_chunk", table)
                    try:
                        con.execute("INSERT INTO api_batch_decisions SELECT * FROM api_chunk")
                    finally:
                        con.unregister("api_chunk")
                    con.execute(
                        "UPDATE api_batches SET status = 'running', processed = ?, disclosed = ?, rejected = ?, "
                        "unmatched = ? WHERE batch_id = ?",
                        [end, counts["disclosed"], counts["rejected"], counts["unmatched"], batch_id],
                    )
            position = end
            self._set(batch_id, processed=position, counts=dict(counts))
            if self.chunk_delay_seconds:
                time.sleep(self.chunk_delay_seconds)
        self._finish(batch_id, agency, as_of, kind, model_version, output_format)

    def _decide_chunk(
        self,
        chunk: Sequence[Item],
        duplicates: Sequence[bool],
        as_of: datetime.date,
        start: int = 0,
        scoring: ScoringRecorder | None = None,
    ) -> list[Decision]:
        service = self.service
        fresh = [item for item, duplicate in zip(chunk, duplicates, strict=True) if not duplicate]
        if scoring is not None:
            # decide_requests numbers the fresh requests; the batch's positions count the duplicates too.
            scoring.positions = [start + offset for offset, duplicate in enumerate(duplicates) if not duplicate]
        decided = iter(decide_requests(service.engine, service.policy, as_of, fresh, observe=scoring))
        return [
            Decision(outcome_request_id(item), Outcome.REJECTED, (ReasonCode.DUPLICATE_REQUEST_ID,))
            if duplicate
            else next(decided)
            for item, duplicate in zip(chunk, duplicates, strict=True)
        ]

    def _finish(
        self,
        batch_id: str,
        agency: str,
        as_of: datetime.date,
        kind: BatchKind,
        model_version: str,
        output_format: OutputFormat = "csv",
    ) -> None:
        service = self.service
        with service.database() as con:
            rows = con.execute(
                "SELECT decision FROM api_batch_decisions WHERE batch_id = ? ORDER BY position", [batch_id]
            ).fetchall()
            meta = con.execute("SELECT total, body_sha256 FROM api_batches WHERE batch_id = ?", [batch_id]).fetchone()
            _, ledger_head = service.ledger.head()
        assert meta is not None
        total, body_sha256 = int(meta[0]), str(meta[1])
        if len(rows) != total:
            raise RuntimeError(f"batch {batch_id}: {len(rows)} decisions stored for {total} records")
        target = self.out_root / batch_id
        target.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner only: personal data
        writer: OutcomeWriter | TableOutcomeWriter
        if output_format == "csv":
            with OutcomeWriter(target, service.policy.extra_disclosed_columns) as writer:
                for (text,) in rows:
                    writer.write(decision_from_json(str(text)))
        else:
            with TableOutcomeWriter(target, service.policy.extra_disclosed_columns, output_format) as writer:
                writer.write_many([decision_from_json(str(text)) for (text,) in rows])
        counts = dict(writer.counts)
        counts["total"] = total
        write_manifest(
            target,
            {
                "batch_id": batch_id,
                "repeats": repeated_batch_id(batch_id),
                "agency": agency,
                "as_of": as_of.isoformat(),
                "input": {"file": f"HTTP request body ({kind})", "sha256": body_sha256, "records": total},
                "counts": counts,
                "policy_version": service.policy.version,
                "model_version": model_version,
                "taxmatch_version": __version__,
                "outputs": {path.name: sha256_file(path) for _, path in sorted(writer.paths().items())},
                "ledger_head": ledger_head,
            },
        )
        # The body and interim decisions are personal data no longer needed once the files exist.
        with service.database() as con, service.ledger.transaction():
            con.execute("UPDATE api_batches SET status = 'done', body = NULL WHERE batch_id = ?", [batch_id])
            con.execute("DELETE FROM api_batch_decisions WHERE batch_id = ?", [batch_id])
        service.checkpoint()
        self._set(batch_id, status="done")
