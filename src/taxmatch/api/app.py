"""The FastAPI application: routes, auth, limits (see docs/api.md); its bodies are in `taxmatch.api.schemas`.

Authorization, in this order: no key, a malformed, unknown or revoked key -> 401; a key
whose role lacks the right -> 403; a batch of another agency -> 404, the same answer as
for a batch that does not exist. The agency is always the key's.

Roles: ``requester`` may look up and submit/read its agency's batches; ``auditor`` may
verify the ledger; ``admin`` may do both (batches still only of its own agency).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from taxmatch import __version__
from taxmatch.api.accesslog import KEY_ID_SCOPE_FIELD, AccessLogMiddleware
from taxmatch.api.batches import BatchAlreadySubmittedError, BatchKind, BatchManager, parse_body
from taxmatch.api.json_body import JsonBodyError, parse_json
from taxmatch.api.keys import ApiKey, KeyStore, Role
from taxmatch.api.limits import ACCOUNTING_THREADS_PER_LOOKUP_THREAD, ApiLimits
from taxmatch.api.operator import router as operator_router
from taxmatch.api.routing import allowed_methods
from taxmatch.api.schemas import (
    BATCH_BODY_CONTENT,
    BATCH_ID_PATH,
    OUTCOME_MEDIA_TYPES,
    BatchAccepted,
    BatchConflict,
    BatchStatus,
    Health,
    LedgerVerification,
    LookupRequest,
    LookupResponse,
    error_responses,
)
from taxmatch.api.service import LOOKUP_BATCH_ID, Accounting, Service
from taxmatch.engine.interface import MasterNotLoadedError
from taxmatch.explain import ExplanationRecorder
from taxmatch.io.outcome_formats import OutputFormat
from taxmatch.io.outcomes import MANIFEST_FILENAME
from taxmatch.io.requests import RequestFileError, new_lookup_request_id, read_requests_from_text
from taxmatch.pipeline import decision_as_json
from taxmatch.settings import Workspace

BATCH_CONTENT_TYPES: dict[str, BatchKind] = {
    "text/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
}
API_DESCRIPTION = (
    "Answers an agency's requests for the current address of named individuals from a master file of tax "
    "returns: each request is validated, matched to at most one taxpayer and either DISCLOSED, REJECTED or "
    "NOT_MATCHED, and every outcome is recorded in a tamper-evident ledger.\n\n"
    "Every route but /healthz needs `Authorization: Bearer <API key>` (from `taxmatch keys create`). "
    "No key or a bad key: 401; a role without the right: 403; another agency's batch: 404. "
    "The agency of a request is always the key's."
)
_bearer = HTTPBearer(auto_error=False, description="An API key from `taxmatch keys create`: `tm_<key id>_<secret>`.")


# ---- limits ---------------------------------------------------------------------------------------


class KeyMeter:
    """Per-key rolling windows: requests per minute and records per day (in memory, per process)."""

    def __init__(self, limits: ApiLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = defaultdict(deque)
        # Per key: (first second, records) buckets of the last day and their running total. A
        # sum over the window on every call cost a lookup more the more lookups the day had
        # (0.3 ms after 10k, linear); buckets of one second bound the window to 86,400 entries.
        self._volume: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._volume_used: dict[str, int] = defaultdict(int)

    def hit(self, key_id: str) -> None:
        now = self._clock()
        with self._lock:
            window = self._requests[key_id]
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= self.limits.rate_limit_per_minute:
                retry = max(1, int(window[0] + 60.0 - now) + 1)
                raise HTTPException(
                    429,
                    f"rate limit: at most {self.limits.rate_limit_per_minute} requests a minute per key",
                    headers={"Retry-After": str(retry)},
                )
            window.append(now)

    def take_volume(self, key_id: str, records: int) -> None:
        now = self._clock()
        with self._lock:
            window = self._volume[key_id]
            used = self._volume_used[key_id]
            # A bucket leaves only when the last second it may hold is a day old: never early.
            while window and window[0][0] + 1.0 <= now - 86_400.0:
                used -= window.popleft()[1]
            self._volume_used[key_id] = used
            if used + records > self.limits.volume_limit_per_day:
                raise HTTPException(
                    429,
                    f"volume limit: at most {self.limits.volume_limit_per_day} records (lookups plus batch records) "
                    f"a day per key; {used} used in the last 24 hours",
                )
            if window and now - window[-1][0] < 1.0:
                window[-1] = (window[-1][0], window[-1][1] + records)
            else:
                window.append((now, records))
            self._volume_used[key_id] = used + records


# ---- authentication (module level: FastAPI resolves the string annotations in module globals) -----


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None, status_poll: bool) -> ApiKey:
    state: ApiState = request.app.state.api
    key = state.keys.authenticate(credentials.credentials) if credentials is not None else None
    if key is None:
        raise HTTPException(401, "a valid API key is required", headers={"WWW-Authenticate": "Bearer"})
    request.scope[KEY_ID_SCOPE_FIELD] = key.key_id
    # A status poll costs a dictionary read: it has its own, larger allowance, so that polling a
    # long batch never spends the key's requests for lookups and submissions.
    (state.status_poll_meter if status_poll else state.meter).hit(key.key_id)
    return key


# The dependencies are coroutines, though nothing in them awaits: FastAPI runs a plain `def`
# dependency in its thread pool, and the two hops there and back (per dependency) cost a lookup
# more CPU than the check itself (a stat of the key file, a SHA-256 and a dictionary read).
async def authenticated(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> ApiKey:
    return _authenticate(request, credentials, status_poll=False)


async def authenticated_status_poll(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
) -> ApiKey:
    return _authenticate(request, credentials, status_poll=True)


def _check_role(key: ApiKey, allowed: tuple[Role, ...]) -> ApiKey:
    if key.role not in allowed:
        raise HTTPException(403, f"the {key.role.value} role may not use this route")
    return key


def require_role(*allowed: Role) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    async def check(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
        return _check_role(key, allowed)

    return check


def require_role_status_poll(*allowed: Role) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    async def check(key: Annotated[ApiKey, Depends(authenticated_status_poll)]) -> ApiKey:
        return _check_role(key, allowed)

    return check


RequesterKey = Annotated[ApiKey, Depends(require_role(Role.REQUESTER, Role.ADMIN))]
AuditorKey = Annotated[ApiKey, Depends(require_role(Role.AUDITOR, Role.ADMIN))]
StatusPollKey = Annotated[ApiKey, Depends(require_role_status_poll(Role.REQUESTER, Role.ADMIN))]


# ---- the application ------------------------------------------------------------------------------


class ApiState:
    def __init__(self, workspace: Workspace, limits: ApiLimits) -> None:
        self.workspace = workspace
        self.limits = limits
        self.keys = KeyStore.for_workspace(workspace)
        self.meter = KeyMeter(limits)
        self.status_poll_meter = KeyMeter(
            dataclasses.replace(limits, rate_limit_per_minute=limits.status_polls_per_minute)
        )
        self.service: Service | None = None
        self.batches: BatchManager | None = None
        # Lookups get threads of their own, as many as the service has lookup engines, fed first
        # in first out: in the shared thread pool, lookups raced with everything else for the
        # engines and the unlucky waited several turns (concurrent p99).
        self.lookup_executor: ThreadPoolExecutor | None = None
        # A lookup decided waits here for the group commit of its ledger entry, on a pool of its own:
        # waiting on a lookup thread, it kept its engine's turn from the next lookup, and a group
        # could never hold more lookups than there are engines (each commit costs ~3 ms of CPU
        # before its entries: the more lookups share it, the less each pays).
        self.accounting_executor: ThreadPoolExecutor | None = None
        # This run's token for the command line's channel (api/operator.py); None: channel closed.
        self.operator_token: str | None = None

    def require_service(self) -> tuple[Service, BatchManager]:
        if self.service is None or self.batches is None:
            raise HTTPException(503, "the server is starting or stopping")
        return self.service, self.batches


def create_app(
    workspace: Workspace,
    limits: ApiLimits | None = None,
    service: Service | None = None,
    operator_token: str | None = None,
) -> FastAPI:
    """The application for one workspace.

    The database is opened at startup unless an open `service` is given (the server opens
    it first so that a locked database or a missing key is reported before listening);
    either way it is closed at shutdown.
    """
    state = ApiState(workspace, limits or ApiLimits.from_environment())
    state.operator_token = operator_token
    opened = [service]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = opened.pop() or Service(workspace, lookup_threads=state.limits.lookup_threads)
        opened.append(None)
        try:
            batches = BatchManager(service, state.limits.batch_chunk_records, state.limits.batch_chunk_delay_seconds)
            batches.start()
        except BaseException:
            service.close()
            raise
        state.service, state.batches = service, batches
        state.lookup_executor = ThreadPoolExecutor(
            max_workers=state.limits.lookup_threads, thread_name_prefix="taxmatch-lookups"
        )
        state.accounting_executor = ThreadPoolExecutor(
            max_workers=state.limits.lookup_threads * ACCOUNTING_THREADS_PER_LOOKUP_THREAD,
            thread_name_prefix="taxmatch-accounting",
        )
        try:
            yield
        finally:
            state.service = state.batches = None
            state.lookup_executor.shutdown(wait=True, cancel_futures=True)
            state.lookup_executor = None
            # Not cancelled: a lookup decided is recorded (and answered) before the service closes.
            state.accounting_executor.shutdown(wait=True)
            state.accounting_executor = None
            batches.stop()
            service.close()

    app = FastAPI(
        title="taxmatch",
        version=__version__,
        summary="Disclosure matching of agency requests against the master file of returns.",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Served by taxmatch.api.docs from packaged assets: FastAPI's own pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(AccessLogMiddleware)
    app.state.api = state
    # Before the routes below: /v1/batches/{id}/manifest.json must match before /v1/batches/{id}/{file}.
    from taxmatch.api import batch_routes, docs
    from taxmatch.api.web import pages

    app.include_router(docs.router)
    app.include_router(batch_routes.router)
    app.include_router(pages.router)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 405:
            # Starlette names the methods of the first route of the path only; a path served by two
            # routes (GET and POST /v1/batches) must answer with all of them.
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed_methods(app, request.scope))}
        return await http_exception_handler(request, error)

    app.include_router(operator_router)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        # Only where and what: pydantic's default also echoes the offending input, which may be personal data.
        problems = [
            {"field": ".".join(str(part) for part in item["loc"] if part != "body") or "body", "message": item["msg"],
             "type": item["type"]}
            for item in error.errors()
        ]  # fmt: skip
        return JSONResponse({"detail": problems}, status_code=422)

    async def read_body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"request body larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"request body larger than {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            # Closed by the client, or by the guard for a too slow body: nobody reads the answer,
            # and no traceback is logged for it.
            raise HTTPException(400, "the client closed the connection before the body was complete") from None
        return b"".join(chunks)

    @app.get("/healthz", tags=["health"], response_model=Health)
    def healthz() -> dict[str, str]:
        """Liveness: no key needed, says nothing about the data."""
        return {"status": "ok" if state.service is not None else "starting"}

    @app.post(
        "/v1/lookup",
        response_model=LookupResponse,
        response_model_exclude_unset=True,
        tags=["requests"],
        responses=error_responses(401, 403, 413, 422, 429, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LookupRequest"}}},
            }
        },
    )
    async def lookup(
        request: Request,
        key: RequesterKey,
        explain: Annotated[
            bool,
            Query(
                description="Add `explanation`: the candidates considered, each comparison's level and weight, "
                "the deciding rule, the probability and what was disclosed.",
                examples=[False],
            ),
        ] = False,
    ) -> JSONResponse:
        """One request, decided exactly as in a batch; the as-of date is today (server time)."""
        body = await read_body(request, state.limits.max_lookup_body_bytes)
        try:
            raw = parse_json(body)
        except JsonBodyError as error:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": f"not a JSON object: {error}", "type": "json_invalid"}]
            ) from None
        if not isinstance(raw, dict):
            raise RequestValidationError([{"loc": ("body",), "msg": "expected one JSON object", "type": "dict_type"}])
        try:
            parsed = LookupRequest.model_validate(raw)
        except ValidationError as error:
            raise RequestValidationError(
                [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_input=False)]
            ) from None
        mapping = parsed.model_dump(exclude_none=True)
        mapping.setdefault("request_id", new_lookup_request_id())
        state.meter.take_volume(key.key_id, 1)
        # Through the NDJSON reader, so a lookup is read exactly as the same object in a batch would be.
        items = list(read_requests_from_text(json.dumps(mapping, ensure_ascii=False), "ndjson"))
        service, _ = state.require_service()
        executor, accounting_executor = state.lookup_executor, state.accounting_executor
        if executor is None or accounting_executor is None:
            raise HTTPException(503, "the server is starting or stopping")
        accounting = Accounting(agency=key.agency, actor=f"api:{key.key_id}", batch_id=LOOKUP_BATCH_ID)
        recorder = ExplanationRecorder() if explain else None
        loop = asyncio.get_running_loop()
        decide = functools.partial(service.decide_lookup, datetime.date.today(), items, recorder)
        try:
            decisions = await loop.run_in_executor(executor, decide)
        except MasterNotLoadedError as error:
            # No master, or one whose model this version cannot read: the message says which, and what to do.
            raise HTTPException(503, str(error)) from None
        # Shielded: a client that disconnects now does not stop the entry of a decision already made.
        await asyncio.shield(
            loop.run_in_executor(accounting_executor, service.account_decisions, items, decisions, accounting)
        )
        (decision,) = decisions
        # As a response, not a dict: the body is LookupResponse by construction (decision_as_json),
        # and FastAPI would validate and re-encode it through pydantic on every lookup.
        answer = decision_as_json(decision, service.policy.extra_disclosed_columns)
        if recorder is not None:
            (answer["explanation"],) = await _in_thread(service.explain, [decision], recorder)
        return JSONResponse(answer)

    @app.post(
        "/v1/batches",
        status_code=202,
        response_model=BatchAccepted,
        tags=["batches"],
        responses={
            202: {
                "description": "Accepted: the batch is decided in the background.",
                "headers": {
                    "Location": {
                        "description": "The URL to poll the batch's status at (as status_url).",
                        "schema": {"type": "string"},
                    }
                },
            },
            409: {
                "model": BatchConflict,
                "description": "The same batch is already queued, running or done (the answer names it, and "
                "`Location` is its status URL); `?rerun=true` records a new batch that repeats it.",
            },
            **error_responses(401, 403, 413, 415, 422, 429, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": BATCH_BODY_CONTENT,
            }
        },
    )
    async def submit_batch(
        request: Request,
        response: Response,
        key: RequesterKey,
        output_format: Annotated[
            OutputFormat,
            Query(
                alias="format",
                description="Format of the outcome files: csv (the default), ndjson or parquet; same columns.",
                examples=["csv"],
            ),
        ] = "csv",
        rerun: Annotated[
            bool,
            Query(
                description="Run again a batch that was submitted before, as a new batch `<its id>-r<N>`.",
                examples=[False],
            ),
        ] = False,
    ) -> dict[str, str] | JSONResponse:
        """A batch: CSV with a header row, or NDJSON (one request object a line), with the columns of a
        lookup request. Accepted at once (202, `Location` names the status URL) and decided in the background."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        kind = BATCH_CONTENT_TYPES.get(media_type)
        if kind is None:
            raise HTTPException(415, "send the batch as text/csv or application/x-ndjson")
        body = await read_body(request, state.limits.max_batch_body_bytes)
        service, batches = state.require_service()
        try:
            items = await _in_thread(parse_body, body, kind)
        except RequestFileError as error:
            raise RequestValidationError([{"loc": ("body",), "msg": str(error), "type": "value_error"}]) from None
        except RecursionError:  # a line of JSON nested thousands deep: the reader's parser gives up
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "JSON nested too deeply", "type": "json_invalid"}]
            ) from None
        if len(items) > state.limits.max_batch_records:
            raise HTTPException(413, f"a batch may hold at most {state.limits.max_batch_records} records")
        if batches.active_for_key(key.key_id) >= state.limits.max_active_batches_per_key:
            raise HTTPException(429, f"at most {state.limits.max_active_batches_per_key} unfinished batches per key")
        try:
            service.model_version()
        except MasterNotLoadedError as error:
            # No master, or one whose model this version cannot read: the message says which, and what to do.
            raise HTTPException(503, str(error)) from None
        state.meter.take_volume(key.key_id, len(items))
        submit = functools.partial(batches.submit, rerun=rerun)
        try:
            accepted = await _in_thread(
                submit, key.agency, key.key_id, kind, body, items, datetime.date.today(), output_format
            )
        except BatchAlreadySubmittedError as refused:
            existing = refused.existing
            status_url = f"/v1/batches/{existing.batch_id}"
            conflict = BatchConflict(
                detail=str(refused), batch_id=existing.batch_id, status_url=status_url, status=existing.status
            )
            return JSONResponse(conflict.model_dump(), status_code=409, headers={"Location": status_url})
        status_url = f"/v1/batches/{accepted.batch_id}"
        response.headers["Location"] = status_url
        return {"batch_id": accepted.batch_id, "status_url": status_url}

    @app.get(
        "/v1/batches/{batch_id}",
        response_model=BatchStatus,
        tags=["batches"],
        responses=error_responses(401, 403, 404, 422, 429, 503),
    )
    def batch_status(batch_id: Annotated[str, BATCH_ID_PATH], key: StatusPollKey) -> dict[str, Any]:
        """Progress and counts of one of your agency's batches. Polls have their own rate allowance per key
        (TAXMATCH_API_STATUS_POLLS_PER_MINUTE), apart from the one of lookups and submissions."""
        _, batches = state.require_service()
        found = batches.get(batch_id, key.agency)
        if found is None:
            raise HTTPException(404, "no such batch")
        return found.to_json()

    @app.get(
        "/v1/batches/{batch_id}/{file_name}",
        response_class=FileResponse,
        tags=["batches"],
        responses={
            200: {
                "description": "The file, in the format the batch was submitted with.",
                "content": {
                    media_type: {"schema": {"type": "string", "format": "binary"}}
                    for media_type in OUTCOME_MEDIA_TYPES.values()
                },
            },
            **error_responses(401, 403, 404, 409, 422, 429, 503),
        },
    )
    def batch_file(
        batch_id: Annotated[str, BATCH_ID_PATH],
        file_name: Annotated[
            str,
            Path(
                description="disclosed, rejected or unmatched, with the batch's format as extension "
                "(.csv, .ndjson or .parquet).",
                examples=["disclosed.csv"],
            ),
        ],
        key: RequesterKey,
    ) -> FileResponse:
        """An outcome file of a finished batch of your agency (manifest.json has its own route)."""
        _, batches = state.require_service()
        found = batches.get(batch_id, key.agency)
        if found is None or file_name not in found.file_names() or file_name == MANIFEST_FILENAME:
            raise HTTPException(404, "no such batch or file")
        if found.status != "done":
            raise HTTPException(409, f"the batch is {found.status}; files are ready when it is done")
        path = batches.output_path(batch_id, file_name, found)
        if not path.is_file():
            raise HTTPException(404, "the batch's files were removed (taxmatch purge)")
        return FileResponse(path, media_type=OUTCOME_MEDIA_TYPES[found.output_format], filename=file_name)

    @app.get(
        "/v1/ledger/verify",
        response_model=LedgerVerification,
        tags=["ledger"],
        responses=error_responses(401, 403, 429, 503),
    )
    async def ledger_verify(key: AuditorKey) -> dict[str, Any]:
        """Verify the hash chain and signed checkpoints of the whole ledger.

        Runs beside lookups, never in front of them. A full verification runs at most once per
        VERIFY_MIN_INTERVAL_SECONDS (default 10); a call in between gets the last result, whose
        `entries` and `head` say which ledger it covered.
        """
        service, _ = state.require_service()
        result = await _in_thread(service.verify_ledger, state.limits.verify_min_interval_seconds)
        return {
            "ok": result.ok,
            "entries": result.entries,
            "head": result.head,
            "signed_through": result.signed_through,
            "unverified": result.unverified,
            "first_bad": result.first_bad,
            "problem": result.problem,
        }

    def openapi() -> dict[str, Any]:
        # The lookup body is parsed by hand (so that auth answers before validation), hence
        # FastAPI does not see its model: add its schema to the document.
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schema = LookupRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(schema.pop("$defs", {}))
            schemas["LookupRequest"] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Blocking database work off the event loop (the database lock serializes it)."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def create_app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory taxmatch.api.app:create_app_from_environment`` ($TAXMATCH_HOME)."""
    return create_app(Workspace.resolve(None))
