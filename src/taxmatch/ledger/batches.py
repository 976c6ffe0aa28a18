"""The workspace's batches as the ledger accounts for them (`taxmatch batch list|show`, the dashboard).

Every decided request of every batch, from the command line or over HTTP, is a ledger entry
naming its batch, agency, outcome and reason codes, so the ledger is the one place that knows
all batches and their counts, wherever their outcome files were written (``--out``). A batch
submitted over HTTP is also a row of ``api_batches`` from the moment it is accepted: that row
gives the status and total of one still queued or running. A batch's manifest, read where its
outcome files are (``--out``, else ``batches/ID/``), adds the as-of date and the input.

Lookups (batch id ``lookup``) and retention purges (outcome ``PURGED``) are not batches.
Reads only: the connection may be read-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from taxmatch.agency import agency_key, agency_key_sql
from taxmatch.io.outcomes import MANIFEST_FILENAME
from taxmatch.ledger.batch_runs import BATCH_RUNS_TABLE
from taxmatch.ledger.store import ENTRIES_TABLE
from taxmatch.records import ReasonCode

__all__ = [
    "LOOKUP_BATCH_ID",
    "BatchDetail",
    "BatchSummary",
    "RequestOutcome",
    "batch_detail",
    "batch_requests",
    "list_batches",
    "outcome_directory",
    "outcome_file_name",
    "recorded_manifest",
    "request_position",
]

# The batch id the ledger records for a single lookup (CLI or HTTP): not a batch.
LOOKUP_BATCH_ID = "lookup"
API_BATCHES_TABLE = "api_batches"
# What `list_batches` and `batch_detail` read besides the ledger's own tables: a copy of the
# ledger with these (`/v1/operator/ledger-snapshot`) answers `batch list` and `batch show`.
BATCH_ACCOUNT_TABLES: tuple[str, ...] = (BATCH_RUNS_TABLE, API_BATCHES_TABLE)
_OUTCOME_KEYS = {"DISCLOSED": "disclosed", "REJECTED": "rejected", "NOT_MATCHED": "unmatched"}
_DECIDED = "outcome IN ('DISCLOSED', 'REJECTED', 'NOT_MATCHED')"


@dataclass(frozen=True)
class BatchSummary:
    """One batch: who asked, how far it is, and its counts by outcome."""

    batch_id: str
    agency: str
    source: str  # "cli" or "api"
    status: str  # done (every record accounted for), queued, running or failed
    processed: int  # records decided and accounted for
    total: int  # records in the batch (for a CLI batch: as many as were accounted for)
    started: str  # when its first entry was recorded (or, over HTTP, when it was accepted), UTC
    finished: str  # when its last entry was recorded, UTC ("" if none yet)
    counts: dict[str, int] = field(default_factory=dict)  # disclosed, rejected, unmatched

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "agency": self.agency,
            "source": self.source,
            "status": self.status,
            "processed": self.processed,
            "total": self.total,
            "started": self.started,
            "finished": self.finished,
            "counts": dict(self.counts),
        }


@dataclass(frozen=True)
class BatchDetail:
    summary: BatchSummary
    reason_counts: dict[str, int]  # reason code -> requests with that code, in the contract's order
    manifest: dict[str, Any] | None  # its manifest.json, if the outcome files are where it was recorded
    directory: Path | None = None  # where its outcome files are (`outcome_directory`), if asked

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary.to_json(),
            "reason_counts": dict(self.reason_counts),
            "as_of": (self.manifest or {}).get("as_of"),
            "manifest": self.manifest,
        }


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main' "
        "AND table_catalog = current_database()",
        [name],
    ).fetchone()
    return row is not None and int(row[0]) > 0


def _counts(disclosed: int, rejected: int, unmatched: int) -> dict[str, int]:
    return {"disclosed": int(disclosed), "rejected": int(rejected), "unmatched": int(unmatched)}


def _ledger_batches(
    con: duckdb.DuckDBPyConnection, agency: str | None, batch_id: str | None
) -> dict[str, BatchSummary]:
    if not _has_table(con, ENTRIES_TABLE):
        return {}
    where = f"batch_id <> ? AND {_DECIDED}"
    parameters: list[object] = [LOOKUP_BATCH_ID]
    if agency is not None:
        where += f" AND {agency_key_sql('agency')} = ?"
        parameters.append(agency_key(agency))
    if batch_id is not None:
        where += " AND batch_id = ?"
        parameters.append(batch_id)
    rows = con.execute(
        "SELECT batch_id, min(agency), bool_or(actor LIKE 'api:%'), min(recorded_at), max(recorded_at), count(*), "
        "count(*) FILTER (outcome = 'DISCLOSED'), count(*) FILTER (outcome = 'REJECTED'), "
        f"count(*) FILTER (outcome = 'NOT_MATCHED') FROM {ENTRIES_TABLE} WHERE {where} GROUP BY batch_id",
        parameters,
    ).fetchall()
    return {
        str(row[0]): BatchSummary(
            batch_id=str(row[0]),
            agency=str(row[1]),
            source="api" if row[2] else "cli",
            status="done",
            processed=int(row[5]),
            total=int(row[5]),
            started=str(row[3]),
            finished=str(row[4]),
            counts=_counts(row[6], row[7], row[8]),
        )
        for row in rows
    }


def _api_batches(con: duckdb.DuckDBPyConnection, agency: str | None, batch_id: str | None) -> list[tuple[Any, ...]]:
    if not _has_table(con, API_BATCHES_TABLE):
        return []
    where = "TRUE"
    parameters: list[object] = []
    if agency is not None:
        where += f" AND {agency_key_sql('agency')} = ?"
        parameters.append(agency_key(agency))
    if batch_id is not None:
        where += " AND batch_id = ?"
        parameters.append(batch_id)
    return con.execute(
        "SELECT batch_id, agency, status, processed, total, created, disclosed, rejected, unmatched "
        f"FROM {API_BATCHES_TABLE} WHERE {where}",
        parameters,
    ).fetchall()


def _merged(con: duckdb.DuckDBPyConnection, agency: str | None, batch_id: str | None) -> list[BatchSummary]:
    found = _ledger_batches(con, agency, batch_id)
    for row in _api_batches(con, agency, batch_id):
        recorded = found.get(str(row[0]))
        found[str(row[0])] = BatchSummary(
            batch_id=str(row[0]),
            agency=str(row[1]),
            source="api",
            status=str(row[2]),
            processed=int(row[3]),
            total=int(row[4]),
            started=str(row[5]),
            finished=recorded.finished if recorded is not None else "",
            counts=dict(recorded.counts) if recorded is not None else _counts(row[6], row[7], row[8]),
        )
    # Newest first; the id breaks ties so that pages never overlap.
    return sorted(found.values(), key=lambda batch: (batch.started, batch.batch_id), reverse=True)


def list_batches(
    con: duckdb.DuckDBPyConnection, *, agency: str | None = None, limit: int | None = None, offset: int = 0
) -> tuple[list[BatchSummary], int]:
    """A page of the batches (newest first), of one agency (any letter case) or all; and how many there are."""
    batches = _merged(con, agency, None)
    end = None if limit is None else offset + limit
    return batches[offset:end], len(batches)


def batch_detail(
    con: duckdb.DuckDBPyConnection, batch_id: str, *, agency: str | None = None, batches_dir: Path | None = None
) -> BatchDetail | None:
    """One batch with its counts by reason code; None if there is none (or it is another agency's)."""
    found = _merged(con, agency, batch_id)
    if not found:
        return None
    reason_counts: dict[str, int] = {}
    if _has_table(con, ENTRIES_TABLE):
        rows = con.execute(
            f"SELECT code, count(*) FROM (SELECT unnest(reason_codes) AS code FROM {ENTRIES_TABLE} "
            f"WHERE batch_id = ? AND {_DECIDED}) GROUP BY code",
            [batch_id],
        ).fetchall()
        by_code = {str(code): int(count) for code, count in rows}
        # The contract's order of codes, not the alphabet's; an unknown code (none today) last.
        reason_counts = {code.value: by_code.pop(code.value) for code in ReasonCode if code.value in by_code}
        reason_counts.update(sorted(by_code.items()))
    directory = outcome_directory(con, batch_id, batches_dir) if batches_dir is not None else None
    return BatchDetail(found[0], reason_counts, _manifest(directory), directory)


def outcome_directory(con: duckdb.DuckDBPyConnection, batch_id: str, batches_dir: Path) -> Path | None:
    """Where the batch's outcome files are: its `--out` directory as recorded, else the workspace's."""
    if not batch_id or "/" in batch_id or batch_id.startswith("."):
        return None
    if _has_table(con, BATCH_RUNS_TABLE):
        row = con.execute(f"SELECT out_dir FROM {BATCH_RUNS_TABLE} WHERE batch_id = ?", [batch_id]).fetchone()
        if row is not None:
            return Path(str(row[0]))
    return batches_dir / batch_id


def recorded_manifest(
    con: duckdb.DuckDBPyConnection, batch_id: str, batches_dir: Path
) -> tuple[Path | None, dict[str, Any] | None]:
    """Where the batch's outcome files are, and its manifest.json there (None if it cannot be read)."""
    directory = outcome_directory(con, batch_id, batches_dir)
    return directory, _manifest(directory)


def outcome_file_name(manifest: dict[str, Any] | None, stem: str) -> str:
    """`disclosed.csv`, or the name in the format the manifest's outputs say (`disclosed.parquet`)."""
    for name in (manifest or {}).get("outputs", {}):
        if str(name).rsplit(".", 1)[0] == stem:
            return str(name)
    return f"{stem}.csv"


def _manifest(directory: Path | None) -> dict[str, Any] | None:
    if directory is None:
        return None
    try:
        manifest = json.loads((directory / MANIFEST_FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


@dataclass(frozen=True)
class RequestOutcome:
    """One request of a batch as the ledger recorded it (no personal data: ids, outcome, codes)."""

    seq: int
    request_id: str
    outcome: str
    reason_codes: tuple[str, ...]
    statute: str
    recorded_at: str
    fields_disclosed: tuple[str, ...]
    policy_version: str = ""


def request_position(con: duckdb.DuckDBPyConnection, batch_id: str, seq: int) -> int:
    """The 0-based position in its batch of the request recorded at ledger entry `seq`: the
    batch's entries are appended in input order (an HTTP batch's chunks may have lookups between)."""
    row = con.execute(
        f"SELECT count(*) FROM {ENTRIES_TABLE} WHERE batch_id = ? AND {_DECIDED} AND seq < ?", [batch_id, seq]
    ).fetchone()
    return int(row[0]) if row is not None else 0


def batch_requests(
    con: duckdb.DuckDBPyConnection,
    batch_id: str,
    *,
    outcome: str | None = None,
    request_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RequestOutcome], int]:
    """A page of a batch's requests in input order (optionally one outcome, or one request id), and how many match.

    The caller has checked that the batch is the asker's (`batch_detail` with its agency).
    """
    if not _has_table(con, ENTRIES_TABLE):
        return [], 0
    where = f"batch_id = ? AND {_DECIDED}"
    parameters: list[object] = [batch_id]
    if outcome is not None:
        where += " AND outcome = ?"
        parameters.append(outcome)
    if request_id is not None:
        where += " AND request_id = ?"
        parameters.append(request_id)
    counted = con.execute(f"SELECT count(*) FROM {ENTRIES_TABLE} WHERE {where}", parameters).fetchone()
    rows = con.execute(
        "SELECT seq, request_id, outcome, reason_codes, statute, recorded_at, fields_disclosed, policy_version "
        f"FROM {ENTRIES_TABLE} "
        f"WHERE {where} ORDER BY seq LIMIT ? OFFSET ?",
        [*parameters, limit, offset],
    ).fetchall()
    found = [
        RequestOutcome(
            int(row[0]), str(row[1]), str(row[2]), tuple(row[3]), str(row[4]), str(row[5]), tuple(row[6]), str(row[7])
        )
        for row in rows
    ]
    return found, int(counted[0]) if counted is not None else 0
