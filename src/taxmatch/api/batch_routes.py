"""GET /v1/batches (your agency's batches, paged) and GET /v1/batches/{id}/manifest.json.

Included by `create_app` before its own batch routes, so that ``manifest.json`` is matched here
and not as an outcome file. Imported only from inside `create_app` (it uses the app's auth).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from taxmatch.api.app import ApiState, RequesterKey
from taxmatch.api.schemas import BATCH_ID_PATH, BatchManifest, BatchPage, error_responses
from taxmatch.io.outcomes import MANIFEST_FILENAME

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100

router = APIRouter(tags=["batches"])


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


@router.get("/v1/batches", response_model=BatchPage, responses=error_responses(401, 403, 422, 429, 503))
def list_batches(
    request: Request,
    key: RequesterKey,
    limit: Annotated[
        int,
        Query(ge=1, le=MAX_PAGE_SIZE, description=f"Batches per page (1-{MAX_PAGE_SIZE}).", examples=[20]),
    ] = DEFAULT_PAGE_SIZE,
    offset: Annotated[
        int, Query(ge=0, le=10**9, description="How many batches to skip (newest first).", examples=[0])
    ] = 0,
) -> dict[str, Any]:
    """Your agency's batches, submitted over HTTP or run from the command line for it, newest first, a page at a
    time; `next` links the next page."""
    _, batches = _state(request).require_service()
    found = batches.list_for_agency(key.agency)
    page = found[offset : offset + limit]
    following = offset + limit
    return {
        "batches": [state.to_json() for state in page],
        "total": len(found),
        "limit": limit,
        "offset": offset,
        "next": f"/v1/batches?limit={limit}&offset={following}" if following < len(found) else None,
    }


@router.get(
    "/v1/batches/{batch_id}/manifest.json",
    response_model=BatchManifest,
    responses=error_responses(401, 403, 404, 409, 422, 429, 503),
)
def batch_manifest(request: Request, batch_id: Annotated[str, BATCH_ID_PATH], key: RequesterKey) -> JSONResponse:
    """manifest.json of a finished batch of your agency: counts, versions, and the SHA-256 of each file."""
    _, batches = _state(request).require_service()
    found = batches.get(batch_id, key.agency)
    if found is None:
        raise HTTPException(404, "no such batch or file")
    if found.status != "done":
        raise HTTPException(409, f"the batch is {found.status}; its manifest is ready when it is done")
    try:
        text = batches.output_path(batch_id, MANIFEST_FILENAME, found).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HTTPException(404, "the batch's files were removed (taxmatch purge)") from None
    return JSONResponse(json.loads(text))
