"""Routes of the command line's channel into a running server (see `taxmatch.api.running`).

Not agency routes: they are left out of the OpenAPI document, answer only a loopback client
presenting this run's operator token, and answer 404 to anyone else (as if they did not exist).
"""

from __future__ import annotations

import datetime
import json
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from taxmatch.api.running import snapshot_directory
from taxmatch.api.service import LOOKUP_BATCH_ID, Accounting, Service
from taxmatch.database import copy_into_snapshot
from taxmatch.engine.interface import MasterNotLoadedError
from taxmatch.explain import ExplanationRecorder
from taxmatch.io.outcome_formats import OutputFormat
from taxmatch.io.requests import RequestFileError, new_lookup_request_id, read_requests_from_text
from taxmatch.ledger import signing_key
from taxmatch.ledger.batches import BATCH_ACCOUNT_TABLES
from taxmatch.pipeline import (
    BatchAlreadyCompletedError,
    BatchIncompleteError,
    BatchOutputError,
    BatchResult,
    decision_as_json,
    run_batch,
)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# The actor recorded in the ledger for what the command line does through the server.
CLI_ACTOR = "cli"


def operator_service(request: Request) -> Service:
    """The service, for a loopback caller with this run's operator token; 404 for anyone else."""
    state = request.app.state.api
    token: str | None = getattr(state, "operator_token", None)
    presented = request.headers.get("authorization", "")
    client = request.client.host if request.client is not None else ""
    if (
        token is None
        or client not in LOOPBACK_HOSTS
        or not secrets.compare_digest(presented.encode(), f"Bearer {token}".encode())
    ):
        raise HTTPException(404, "Not Found")
    service, _ = state.require_service()
    result: Service = service
    return result


OperatorService = Annotated[Service, Depends(operator_service)]
router = APIRouter(prefix="/v1/operator", include_in_schema=False)


class OperatorLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request: dict[str, Any]
    as_of: datetime.date
    agency: str
    # `cli:<login>` (`ledger.model.command_line_actor`); a caller of this channel owns the workspace.
    actor: str = Field(default=CLI_ACTOR, pattern=r"^cli(:[A-Za-z0-9._-]{1,64})?$")
    explain: bool = False


class OperatorBatch(BaseModel):
    """`taxmatch batch run`'s arguments; paths absolute (the server's working directory is not the caller's)."""

    model_config = ConfigDict(extra="forbid")
    file: str
    agency: str
    as_of: datetime.date
    out_dir: str | None = None
    rerun: bool = False
    output_format: OutputFormat = "csv"


def batch_result_as_json(result: BatchResult) -> dict[str, Any]:
    return {
        "batch_id": result.batch_id,
        "out_dir": str(result.out_dir),
        "counts": result.counts,
        "manifest_path": str(result.manifest_path),
        "seconds": result.seconds,
        "repeats": result.repeats,
        "finished_interrupted": result.finished_interrupted,
        "removed_staging": result.removed_staging,
    }


def batch_result_from_json(answer: dict[str, Any]) -> BatchResult:
    return BatchResult(
        batch_id=str(answer["batch_id"]),
        out_dir=Path(answer["out_dir"]),
        counts={str(key): int(value) for key, value in answer["counts"].items()},
        manifest_path=Path(answer["manifest_path"]),
        seconds=float(answer["seconds"]),
        repeats=None if answer["repeats"] is None else str(answer["repeats"]),
        finished_interrupted=bool(answer["finished_interrupted"]),
        removed_staging=int(answer["removed_staging"]),
    )


class SnapshotOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint: bool = False


@router.post("/lookup")
async def operator_lookup(order: OperatorLookup, service: OperatorService) -> dict[str, Any]:
    """`taxmatch lookup` while the server runs: decided and accounted like an API lookup (actor `cli:<login>`)."""
    if not order.agency.strip():
        raise HTTPException(422, "the agency is required")
    request = {"request_id": new_lookup_request_id(), **order.request}
    items = list(read_requests_from_text(json.dumps(request, ensure_ascii=False), "ndjson"))
    accounting = Accounting(agency=order.agency.strip(), actor=order.actor, batch_id=LOOKUP_BATCH_ID)
    recorder = ExplanationRecorder() if order.explain else None
    try:
        (decision,) = await run_in_threadpool(service.decide_and_account, order.as_of, items, accounting, recorder)
    except MasterNotLoadedError as error:
        raise HTTPException(503, str(error)) from None
    answer = decision_as_json(decision, service.policy.extra_disclosed_columns)
    if recorder is not None:
        (answer["explanation"],) = await run_in_threadpool(service.explain, [decision], recorder)
    return answer


@router.post("/batch-run")
async def operator_batch_run(order: OperatorBatch, service: OperatorService) -> dict[str, Any]:
    """`taxmatch batch run` while the server runs: the very `run_batch` of the command line.

    The same function on the server's connection gives the same outcome files, manifest and
    ledger entries (actor `cli`) as a run without a server. It holds the write lock for the whole
    batch, so lookups answered meanwhile wait for their ledger commit until it is recorded (an
    operator's batch is rare; agencies' batches go through `POST /v1/batches`, chunk by chunk).
    One process: a fork would copy the server's threads.
    """
    if not order.agency.strip():
        raise HTTPException(422, "the agency is required")

    def run() -> BatchResult:
        with service.database(), service.batch_threads():
            return run_batch(
                service.engine,
                service.policy,
                service.ledger,
                signing_key(service.workspace),
                Path(order.file),
                order.agency.strip(),
                order.as_of,
                None if order.out_dir is None else Path(order.out_dir),
                service.workspace.batches_dir,
                actor=CLI_ACTOR,
                rerun=order.rerun,
                output_format=order.output_format,
                processes=1,
            )

    try:
        result = await run_in_threadpool(run)
    except (BatchAlreadyCompletedError, BatchIncompleteError) as error:
        raise HTTPException(409, str(error)) from None
    except (BatchOutputError, RequestFileError) as error:
        raise HTTPException(422, str(error)) from None
    except MasterNotLoadedError as error:
        raise HTTPException(503, str(error)) from None
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        raise HTTPException(422, f"cannot use{where}: {error.strerror or type(error).__name__}") from None
    return batch_result_as_json(result)


@router.post("/ledger-snapshot")
async def operator_ledger_snapshot(order: SnapshotOrder, service: OperatorService) -> dict[str, str]:
    """An encrypted copy of the ledger tables as of one transaction, for `ledger verify/report/export`,
    with the batch tables that `batch list` and `batch show` read beside the ledger."""

    def snapshot() -> str:
        path = snapshot_directory(service.workspace) / f"ledger-{secrets.token_hex(8)}.duckdb"
        # The writers wait for the copy: signed and copied as of one moment, the snapshot verifies as
        # the workspace does (a lookup committed between the two would be an unsigned tail). An
        # operator's command, rare; the auditors' API route never waits like this.
        with service.database():
            if order.checkpoint:
                service.checkpoint()
            else:
                service.sign_own_tail()
            with service.reading() as cursor:
                tables = [
                    str(row[0])
                    for row in cursor.execute(
                        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                        "AND (table_name LIKE 'ledger%' OR list_contains(?, table_name)) ORDER BY table_name",
                        [list(BATCH_ACCOUNT_TABLES)],
                    ).fetchall()
                ]
                copy_into_snapshot(cursor, service.workspace, path, tables)
        return str(path)

    return {"path": await run_in_threadpool(snapshot)}
