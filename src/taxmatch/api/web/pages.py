"""The dashboard's pages (/ui/...): server-rendered HTML over the same keys, roles and data as the API.

Rules of every page: no session, a redirect to /ui/login; a role without the right, 403; another
agency's batch or request, 404 (as for one that does not exist). Every form carries the session's
CSRF token (the sign-in form a token of its own, paired with a cookie), and every answer a
Content-Security-Policy that allows nothing from elsewhere and no script at all.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from taxmatch.api.accesslog import KEY_ID_SCOPE_FIELD
from taxmatch.api.app import ApiState
from taxmatch.api.keys import ApiKey, Role
from taxmatch.api.service import Accounting
from taxmatch.api.web.sessions import COOKIE_NAME, CSRF_FIELD, Session, SessionStore, csrf_matches
from taxmatch.charts import Bar, Step, bar_chart, column_chart, top_rows, waterfall_chart
from taxmatch.explain import ExplanationRecorder, explanation_of
from taxmatch.io.outcome_summary import outcome_row, summarize_outcomes
from taxmatch.io.requests import read_requests_from_text
from taxmatch.ledger.batch_explanations import BatchScoring, recorded_decision
from taxmatch.ledger.batches import (
    BatchDetail,
    RequestOutcome,
    batch_detail,
    batch_requests,
    list_batches,
    outcome_file_name,
    request_position,
)
from taxmatch.ledger.report import TABLE_ROWS, build_report, report_charts
from taxmatch.pipeline import decision_as_json
from taxmatch.records import REASON_TEXT, Decision, Disclosure, Outcome, ReasonCode
from taxmatch.settings import Policy

router = APIRouter(include_in_schema=False)

LOGIN_COOKIE: Final = "taxmatch_login"
BATCHES_PER_PAGE: Final = 25
REQUESTS_PER_PAGE: Final = 50
MAX_FORM_BYTES: Final = 16 * 1024
OUTCOMES: Final = ("DISCLOSED", "REJECTED", "NOT_MATCHED")
# The Disclosure fields a disclosed row gives as text (tax_year and match_probability are numbers).
DISCLOSURE_TEXT_FIELDS: Final = (
    "tin_last4", "first_name", "middle_name", "last_name", "suffix", "street", "unit", "city", "state", "zip",
    "evidence",
)  # fmt: skip
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOOKUP_FIELDS: Final = (
    ("first_name", "First name"), ("middle_name", "Middle name"), ("last_name", "Last name"), ("suffix", "Suffix"),
    ("dob", "Date of birth"), ("tin", "TIN"), ("street", "Street"), ("unit", "Unit"), ("city", "City"),
    ("state", "State"), ("zip", "ZIP"), ("a_number", "A-number"), ("removal_order_date", "Removal order date"),
    ("statute", "Statute"), ("tax_years", "Tax years"),
)  # fmt: skip

_templates = Environment(loader=PackageLoader("taxmatch.api.web", "templates"), autoescape=select_autoescape())
# A path segment, "/" included: request ids are the requester's text.
_templates.filters["path_part"] = lambda value: quote(str(value), safe="")
_stores_lock = threading.Lock()


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def _sessions(request: Request) -> SessionStore:
    with _stores_lock:
        store: SessionStore | None = getattr(request.app.state, "web_sessions", None)
        if store is None:
            store = SessionStore()
            request.app.state.web_sessions = store
        return store


@dataclass(frozen=True)
class Viewer:
    session: Session
    key: ApiKey

    @property
    def agency(self) -> str:
        return self.key.agency

    @property
    def role(self) -> str:
        return self.key.role.value


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    viewer: Viewer | None = context.get("viewer")
    if viewer is not None:
        context.setdefault("csrf_token", viewer.session.csrf_token)
    html = _templates.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


def _viewer(request: Request, *roles: Role) -> Viewer | Response:
    """The signed-in key (re-checked: a revoked key ends its sessions), or the answer to give instead."""
    store = _sessions(request)
    session = store.get(request.cookies.get(COOKIE_NAME))
    key = _state(request).keys.current().get(session.key_id) if session is not None else None
    if session is None or key is None or not key.active:
        if session is not None:
            store.end(session.token)
        return RedirectResponse("/ui/login", status_code=303, headers=_SECURITY_HEADERS)
    request.scope[KEY_ID_SCOPE_FIELD] = key.key_id
    viewer = Viewer(session, key)
    if roles and key.role not in roles:
        return _page(
            "message.html", 403, viewer=viewer, title="Not for your role",
            message=f"The {key.role.value} role may not open this page.",
        )  # fmt: skip
    return viewer


def _not_found(viewer: Viewer) -> HTMLResponse:
    return _page("message.html", 404, viewer=viewer, title="Not found", message="No such batch or request.")


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=64)
    return {name: values[0] for name, values in parsed.items() if values}


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return max(1, int(text)) if text.isdigit() and len(text) < 9 else 1


# ---- sign in and out ----------------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    signed_in = _sessions(request).get(request.cookies.get(COOKIE_NAME)) is not None
    return RedirectResponse("/ui/batches" if signed_in else "/ui/login", status_code=303)


def _login_page(error: str = "", status: int = 200) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    page = _page("login.html", status, title="Sign in", viewer=None, login_csrf=token, error=error)
    page.set_cookie(LOGIN_COOKIE, token, max_age=1800, httponly=True, samesite="strict", path="/ui/login")
    return page


@router.get("/ui/login")
def login_form() -> HTMLResponse:
    return _login_page()


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    expected = request.cookies.get(LOGIN_COOKIE)
    submitted = form.get(CSRF_FIELD)
    if not expected or not submitted or not secrets.compare_digest(expected, submitted):
        return _login_page("The form expired; sign in again.", 403)
    key = _state(request).keys.authenticate(form.get("api_key", ""))
    if key is None:
        return _login_page("That key is not valid (unknown, mistyped or revoked).", 401)
    session = _sessions(request).create(key)
    request.scope[KEY_ID_SCOPE_FIELD] = key.key_id
    answer = RedirectResponse("/ui/batches", status_code=303, headers=_SECURITY_HEADERS)
    answer.set_cookie(
        COOKIE_NAME, session.token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
    )
    answer.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return answer


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    viewer = _viewer(request)
    if not isinstance(viewer, Viewer):
        return viewer
    if not csrf_matches(viewer.session, (await _form(request)).get(CSRF_FIELD)):
        return _page("message.html", 403, viewer=viewer, title="Form expired", message="Reload the page and try again.")
    _sessions(request).end(viewer.session.token)
    answer = RedirectResponse("/ui/login", status_code=303, headers=_SECURITY_HEADERS)
    answer.delete_cookie(COOKIE_NAME, path="/")
    return answer


# ---- batches --------------------------------------------------------------------------------------


@router.get("/ui/batches")
def batches_page(request: Request) -> Response:
    viewer = _viewer(request, Role.REQUESTER, Role.ADMIN)
    if not isinstance(viewer, Viewer):
        return viewer
    service, _ = _state(request).require_service()
    page = _page_number(request)
    with service.database() as con:
        found, total = list_batches(
            con, agency=viewer.agency, limit=BATCHES_PER_PAGE, offset=(page - 1) * BATCHES_PER_PAGE
        )
    running = any(batch.status in ("queued", "running") for batch in found)
    return _page(
        "batches.html", viewer=viewer, title="Batches", batches=found, total=total, page=page,
        pages=max(1, -(-total // BATCHES_PER_PAGE)), refresh=5 if running else None,
    )  # fmt: skip


def _detail(request: Request, viewer: Viewer, batch_id: str) -> BatchDetail | None:
    service, _ = _state(request).require_service()
    with service.database() as con:
        return batch_detail(con, batch_id, agency=viewer.agency, batches_dir=service.workspace.batches_dir)


@router.get("/ui/batches/{batch_id}")
def batch_page(request: Request, batch_id: str) -> Response:
    viewer = _viewer(request, Role.REQUESTER, Role.ADMIN)
    if not isinstance(viewer, Viewer):
        return viewer
    detail = _detail(request, viewer, batch_id)
    if detail is None:
        return _not_found(viewer)
    outcome = request.query_params.get("outcome") or None
    if outcome not in (None, *OUTCOMES):
        outcome = None
    page = _page_number(request)
    service, _ = _state(request).require_service()
    with service.database() as con:
        rows, matching = batch_requests(
            con, batch_id, outcome=outcome, limit=REQUESTS_PER_PAGE, offset=(page - 1) * REQUESTS_PER_PAGE
        )
    running = detail.summary.status in ("queued", "running")
    return _page(
        "batch.html", viewer=viewer, title=f"Batch {batch_id}", detail=detail, requests=rows, matching=matching,
        outcome=outcome, page=page, pages=max(1, -(-matching // REQUESTS_PER_PAGE)),
        charts=_batch_charts(detail), refresh=5 if running else None,
    )  # fmt: skip


def _batch_charts(detail: BatchDetail) -> dict[str, Markup]:
    """The batch page's charts: bounded by the kinds of things counted, not by the batch's rows."""
    counts = detail.summary.counts
    charts = {
        "outcomes": bar_chart(
            [Bar(key, counts[key], key) for key in ("disclosed", "rejected", "unmatched")], "Requests by outcome", 90
        ),
        "reasons": bar_chart(
            [Bar(code, count) for code, count in detail.reason_counts.items()], "Requests by reason code", 175
        ),
    }
    if detail.summary.status == "done" and detail.directory is not None:
        summary = summarize_outcomes(
            detail.directory,
            outcome_file_name(detail.manifest, "disclosed"),
            outcome_file_name(detail.manifest, "unmatched"),
        )
        charts["probability"] = column_chart(
            summary.probability_bins, ("DISCLOSED", "NOT_MATCHED"), "Requests by match probability", label_every=4
        )
        charts["states"] = bar_chart(
            [Bar(state or "(none)", count) for state, count in top_rows(summary.disclosed_by_state, 15, "other")],
            "Disclosures by state",
            90,
        )
        charts["tax_years"] = bar_chart(
            [Bar(year, count) for year, count in summary.disclosed_by_tax_year.items()], "Disclosures by tax year", 60
        )
        charts["without_candidate"] = f"{summary.unmatched_without_candidate:,}"
    return {name: Markup(svg) for name, svg in charts.items()}


@router.get("/ui/batches/{batch_id}/requests/{request_id}")
def request_page(request: Request, batch_id: str, request_id: str) -> Response:
    viewer = _viewer(request, Role.REQUESTER, Role.ADMIN)
    if not isinstance(viewer, Viewer):
        return viewer
    detail = _detail(request, viewer, batch_id)
    if detail is None:
        return _not_found(viewer)
    service, _ = _state(request).require_service()
    with service.database() as con:
        rows, _ = batch_requests(con, batch_id, request_id=request_id, limit=1)
        if not rows:
            return _not_found(viewer)
        entry = rows[0]
        recorded = recorded_decision(con, batch_id, request_position(con, batch_id, entry.seq))
    stem = {"DISCLOSED": "disclosed", "REJECTED": "rejected", "NOT_MATCHED": "unmatched"}[entry.outcome]
    row = None
    if detail.directory is not None:
        row = outcome_row(detail.directory, outcome_file_name(detail.manifest, stem), request_id)
    codes = tuple(ReasonCode(code) for code in entry.reason_codes if code in ReasonCode.__members__)
    reasons = row.get("reasons") if row is not None and "reasons" in row else "; ".join(REASON_TEXT[c] for c in codes)
    probability: str | None = row.get("match_probability") if row is not None else None
    if probability is None and reasons and "best match probability " in reasons:
        probability = reasons.rsplit("best match probability ", 1)[1]
    explanation, note = _batch_explanation(service.policy, entry, codes, row, recorded)
    return _page(
        "request.html", viewer=viewer, title=f"Request {request_id}", batch_id=batch_id, entry=entry,
        reasons=reasons, probability=probability, evidence=row.get("evidence") if row is not None else None,
        explanation=explanation, explanation_note=note,
    )  # fmt: skip


def _batch_explanation(
    policy: Policy,
    entry: RequestOutcome,
    codes: tuple[ReasonCode, ...],
    row: dict[str, str] | None,
    recorded: BatchScoring | None,
) -> tuple[dict[str, Any] | None, str]:
    """The request's explanation from what its batch kept of its decision, or why there is none."""
    if entry.policy_version and entry.policy_version != policy.version:
        return None, (
            f"This request was decided under policy {entry.policy_version}; the workspace's policy is now "
            f"{policy.version}, whose thresholds would misstate the deciding rule, so no explanation is shown."
        )
    outcome = Outcome(entry.outcome)
    if recorded is None and outcome is not Outcome.REJECTED:
        return None, (
            "Its batch kept nothing of how this request was scored (it was decided before batches kept it, "
            "or its files were purged). A lookup explains a request as it decides it: the Lookup page, "
            "`taxmatch lookup --explain` or `POST /v1/lookup?explain=true`."
        )
    disclosure = None
    if outcome is Outcome.DISCLOSED and row is not None:
        disclosure = Disclosure(
            **{name: row.get(name, "") for name in DISCLOSURE_TEXT_FIELDS},
            tax_year=int(row.get("tax_year") or 0),
            match_probability=float(row.get("match_probability") or 0.0),
        )
    decision = Decision(entry.request_id, outcome, codes, disclosure, row.get("reasons", "") if row else "")
    if recorded is None:
        # Rejected before matching: `explanation_of` says which validation rule, from the codes.
        explanation = explanation_of(dataclasses.replace(decision, detail=""), None, policy, 0.0, {})
    else:
        explanation = explanation_of(decision, recorded.observed, policy, recorded.prior_weight, recorded.level_weights)
    _waterfall_charts(explanation)
    return explanation, ""


# ---- lookup ---------------------------------------------------------------------------------------


def _waterfall_charts(explanation: dict[str, Any]) -> None:
    """Adds each candidate's waterfall (prior, each comparison's weight, name frequency) as inline SVG."""
    for candidate in explanation.get("candidates", []):
        terms: Sequence[dict[str, Any]] = candidate["comparisons"]
        steps = [Step("prior", candidate["prior_match_weight"])]
        steps += [Step(f"{term['comparison']} {term['level']}", term["match_weight"]) for term in terms]
        steps.append(Step("name frequency", candidate["term_frequency_adjustment"]))
        candidate["waterfall"] = Markup(
            waterfall_chart(steps, f"Candidate {candidate['candidate']}: match weight, term by term")
        )


@router.get("/ui/lookup")
def lookup_form(request: Request) -> Response:
    viewer = _viewer(request, Role.REQUESTER)
    if not isinstance(viewer, Viewer):
        return viewer
    return _page("lookup.html", viewer=viewer, title="Lookup", fields=LOOKUP_FIELDS, values={}, answer=None)


@router.post("/ui/lookup")
async def lookup(request: Request) -> Response:
    viewer = _viewer(request, Role.REQUESTER)
    if not isinstance(viewer, Viewer):
        return viewer
    form = await _form(request)
    if not csrf_matches(viewer.session, form.get(CSRF_FIELD)):
        return _page("message.html", 403, viewer=viewer, title="Form expired", message="Reload the page and try again.")
    state = _state(request)
    values = {name: form.get(name, "").strip()[:1000] for name, _ in LOOKUP_FIELDS}
    mapping = {name: value for name, value in values.items() if value}
    mapping["request_id"] = f"ui-{secrets.token_hex(6)}"
    state.meter.take_volume(viewer.key.key_id, 1)
    items = list(read_requests_from_text(json.dumps(mapping, ensure_ascii=False), "ndjson"))
    service, _ = state.require_service()
    recorder = ExplanationRecorder()
    accounting = Accounting(agency=viewer.agency, actor=f"ui:{viewer.key.key_id}", batch_id="lookup")
    from starlette.concurrency import run_in_threadpool

    (decision,) = await run_in_threadpool(
        service.decide_and_account, datetime.date.today(), items, accounting, recorder
    )
    answer = decision_as_json(decision, service.policy.extra_disclosed_columns)
    (answer["explanation"],) = await run_in_threadpool(service.explain, [decision], recorder)
    _waterfall_charts(answer["explanation"])
    return _page("lookup.html", viewer=viewer, title="Lookup", fields=LOOKUP_FIELDS, values=values, answer=answer)


# ---- auditors and admins --------------------------------------------------------------------------


@router.get("/ui/ledger")
def ledger_page(request: Request) -> Response:
    viewer = _viewer(request, Role.AUDITOR, Role.ADMIN)
    if not isinstance(viewer, Viewer):
        return viewer
    service, _ = _state(request).require_service()
    verification = service.verify_ledger()
    last = datetime.datetime.now(datetime.UTC).date()
    first = last - datetime.timedelta(days=365)
    with service.database() as con:
        report = build_report(con, first, last)
    charts = {name: Markup(svg) for name, svg in report_charts(report).items()}
    largest = sorted(report.counts, key=lambda row: -row.count)[:TABLE_ROWS]
    return _page(
        "ledger.html", viewer=viewer, title="Ledger", verification=verification, report=report, charts=charts,
        counts=[row for row in report.counts if row in set(largest)],
    )  # fmt: skip


@router.get("/ui/keys")
def keys_page(request: Request) -> Response:
    viewer = _viewer(request, Role.ADMIN)
    if not isinstance(viewer, Viewer):
        return viewer
    return _page("keys.html", viewer=viewer, title="Keys", keys=_state(request).keys.list())


@router.get("/ui/static/dashboard.css")
def style_sheet() -> Response:
    text = resources.files("taxmatch.api.web").joinpath("static/dashboard.css").read_text(encoding="utf-8")
    return Response(text, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
