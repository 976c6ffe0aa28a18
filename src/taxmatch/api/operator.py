"""Routes of the command line's channel into a running server (see `taxmatch.api.running`).

Not agency routes: they are left out of the OpenAPI document, answer only a loopback client
presenting this run's operator token, and answer 404 to anyone else (as if they did not exist).
"""

from __future__ import annotations

import datetime
import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from taxmatch.api.running import snapshot_directory
from taxmatch.api.service import LOOKUP_BATCH_ID, Accounting, Service
from taxmatch.database import copy_into_snapshot
from taxmatch.engine.interface import MasterNotLoadedError
from taxmatch.io.requests import read_requests_from_text
from taxmatch.pipeline import decision_as_json

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


class SnapshotOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint: bool = False


@router.post("/lookup")
async def operator_lookup(order: OperatorLookup, service: OperatorService) -> dict[str, Any]:
    """`taxmatch lookup` while the server runs: decided and accounted like an API lookup."""
    if not order.agency.strip():
        raise HTTPException(422, "the agency is required")
    items = list(read_requests_from_text(json.dumps(order.request, ensure_ascii=False), "ndjson"))
    accounting = Accounting(agency=order.agency.strip(), actor=CLI_ACTOR, batch_id=LOOKUP_BATCH_ID)
    try:
        (decision,) = await run_in_threadpool(service.decide_and_account, order.as_of, items, accounting)
    except MasterNotLoadedError as error:
        raise HTTPException(503, str(error)) from None
    return decision_as_json(decision, service.policy.extra_disclosed_columns)


@router.post("/ledger-snapshot")
async def operator_ledger_snapshot(order: SnapshotOrder, service: OperatorService) -> dict[str, str]:
    """An encrypted copy of the ledger tables as of one transaction, for `ledger verify/report/export`."""

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
                        "AND table_name LIKE 'ledger%' ORDER BY table_name"
                    ).fetchall()
                ]
                copy_into_snapshot(cursor, service.workspace, path, tables)
        return str(path)

    return {"path": await run_in_threadpool(snapshot)}
