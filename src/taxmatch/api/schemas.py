"""The bodies the HTTP API accepts and answers, as pydantic models: the OpenAPI document is built from them.

Every field carries a description and an example, because integrators read the schema and
tools fuzz the server against it: what is written here must be exactly what the server does.
The text fields of a request also accept a JSON number (a ZIP sent as ``12345``), read as its
text; the schema says so (`_TEXT_SCHEMA`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from taxmatch.io.outcome_formats import OutputFormat
from taxmatch.io.requests import MAX_FIELD_CHARS, MAX_PRIOR_ADDRESSES
from taxmatch.records import REQUEST_COLUMNS

OUTCOME_MEDIA_TYPES: dict[OutputFormat, str] = {
    "csv": "text/csv",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
# What POST /v1/batches reads. CSV: the contract's header row, then any rows (a row that cannot be read
# is one MALFORMED_RECORD outcome, not a refusal). The server also takes the header in another order,
# case or with extra columns; the schema states the one form every client can rely on.
_CSV_HEADER = ",".join(REQUEST_COLUMNS)
BATCH_BODY_CONTENT: dict[str, Any] = {
    "text/csv": {
        "schema": {
            "type": "string",
            "pattern": f"^{_CSV_HEADER}(\\r?\\n[\\s\\S]*)?$",
            "description": "A header row with the request columns, then one request a line.",
        },
        "example": _CSV_HEADER
        + "\nRQ-1,Maria,L,Garcia Lopez,,1984-03-09,,1420 Oak Ridge Dr,Apt 4,Columbus,OH,43215,A123456789,"
        "2024-01-15,8 USC 1326,2023-2024\n",
    },
    "application/x-ndjson": {
        "schema": {
            "type": "string",
            "description": "One request object a line (the fields of a lookup request), e.g. "
            '{"request_id": "RQ-1", "first_name": "Maria", ...}; a line that is not one is a MALFORMED_RECORD outcome.',
        },
    },
}
# The path parameter of every batch route: documented once.
BATCH_ID_PATH = Path(description="A batch id, as answered by POST /v1/batches.", examples=["b-3f2a9c0d4e5b6a71"])

# What a request's text field accepts (coerce_numbers_to_str): text, a number (read as its text), or null.
_TEXT_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "maxLength": MAX_FIELD_CHARS}, {"type": "number"}, {"type": "null"}]
}
_Text = Annotated[str | None, WithJsonSchema(_TEXT_SCHEMA)]


def _text(description: str, example: str) -> Any:
    return Field(default=None, max_length=MAX_FIELD_CHARS, description=description, examples=[example])


class PriorAddress(BaseModel):
    """Another address the person lived at; it may corroborate the match like the main address."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    street: _Text = _text("House number and street, or a PO box.", "1420 Oak Ridge Dr")
    unit: _Text = _text("Apartment, suite or unit.", "Apt 4")
    city: _Text = _text("City.", "Columbus")
    state: _Text = _text("Two-letter state code.", "OH")
    zip: _Text = _text("ZIP code, 5 or 9 digits.", "43215")


class LookupRequest(BaseModel):
    """One request: the columns of a request batch. Unknown fields are refused (422).

    Every field is optional in the schema, because a request that lacks a required element is
    answered, not refused: it is REJECTED with the reason code that names the element.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    request_id: _Text = _text("Your id for the request, echoed in the answer (default: a generated one).", "RQ-000123")
    first_name: _Text = _text("Given name (required).", "Maria")
    middle_name: _Text = _text("Middle name or initial.", "L")
    last_name: _Text = _text("Surname; may hold two surnames (required).", "Garcia Lopez")
    suffix: _Text = _text("Generation suffix: Jr, Sr, II, III ...", "Jr")
    dob: _Text = _text("Date of birth, YYYY-MM-DD (or MM/DD/YYYY); must be valid if given.", "1984-03-09")
    tin: _Text = _text("SSN or ITIN, 9 digits, dashes allowed; must be valid if given.", "123-45-6789")
    street: _Text = _text("Previous address: house number and street, or a PO box (required).", "1420 Oak Ridge Dr")
    unit: _Text = _text("Previous address: apartment, suite or unit.", "Apt 4")
    city: _Text = _text("Previous address: city (a ZIP, or a city and state, is required).", "Columbus")
    state: _Text = _text("Previous address: two-letter state code.", "OH")
    zip: _Text = _text("Previous address: ZIP code, 5 or 9 digits; must exist and lie in the state.", "43215")
    a_number: _Text = _text("Alien registration number: A optional, 8 or 9 digits (required).", "A123456789")
    removal_order_date: _Text = _text("Date of the final removal order, YYYY-MM-DD (required).", "2024-01-15")
    statute: _Text = _text("The criminal statute under investigation, on the permitted list (required).", "8 USC 1326")
    tax_years: _Text = _text(
        "Tax period: YYYY or YYYY-YYYY, within the ten completed tax years (required).", "2023-2024"
    )
    prior_addresses: list[PriorAddress] | None = Field(
        default=None,
        max_length=MAX_PRIOR_ADDRESSES,
        description=f"Other previous addresses (at most {MAX_PRIOR_ADDRESSES}).",
        examples=[[{"street": "77 Elm St", "city": "Dayton", "state": "OH", "zip": "45402"}]],
    )


class DisclosureOut(BaseModel):
    """What is disclosed for a DISCLOSED request: the taxpayer's identity from one return (disclosed.csv's columns)."""

    request_id: str = Field(description="The request's id.", examples=["RQ-000123"])
    tin_last4: str = Field(description="Last four digits of the taxpayer's TIN.", examples=["6789"])
    first_name: str = Field(description="Given name as on the return.", examples=["MARIA"])
    middle_name: str = Field(description="Middle name as on the return (may be empty).", examples=["L"])
    last_name: str = Field(description="Surname as on the return.", examples=["GARCIA LOPEZ"])
    suffix: str = Field(description="Suffix as on the return (may be empty).", examples=[""])
    street: str = Field(description="Street of the address on the return.", examples=["88 MAPLE AVE"])
    unit: str = Field(description="Unit of the address on the return (may be empty).", examples=[""])
    city: str = Field(description="City of the address on the return.", examples=["DAYTON"])
    state: str = Field(description="State of the address on the return.", examples=["OH"])
    zip: str = Field(description="ZIP code of the address on the return.", examples=["45402"])
    tax_year: int = Field(description="Tax year of the return the address comes from.", examples=[2024])
    match_probability: float = Field(
        description="Probability that the taxpayer is the person requested (6 decimals).", examples=[0.999871]
    )
    evidence: str = Field(
        description="Which fields agreed, and how: field=level pairs separated by ';'.",
        examples=["name=exact;address=exact;dob=exact"],
    )
    tin: str | None = Field(
        default=None, description="Full TIN; present only if the workspace policy releases it.", examples=["123456789"]
    )
    phone: str | None = Field(
        default=None, description="Phone; present only if the workspace policy releases it.", examples=["6145550100"]
    )


class ComparisonTerm(BaseModel):
    comparison: str = Field(description="first_name, last_name, dob, address or tin.", examples=["dob"])
    level: str = Field(description="How the request's value compares with the return's.", examples=["exact"])
    match_weight: float = Field(
        description="The model's weight for this level: log2 of its Bayes factor.", examples=[7.9]
    )
    bayes_factor: float = Field(
        description="How many times likelier this level is for the same person than for two others.", examples=[239.3]
    )


class Candidate(BaseModel):
    """One taxpayer the request was compared with; never identified (a letter, A the strongest)."""

    candidate: str = Field(description="A letter: A is the candidate with the strongest pair.", examples=["A"])
    chosen: bool = Field(description="Whether this candidate is the taxpayer the decision chose.", examples=[True])
    returns_compared: int = Field(description="Distinct returns' evidence compared with the request.", examples=[3])
    vetoed: bool = Field(
        description="A date of birth, TIN or Jr/Sr given that conflicts rules it out.", examples=[False]
    )
    address_corroborated: bool = Field(
        description="One of its own returns corroborates the request's address.", examples=[True]
    )
    names_agree: bool = Field(description="Given name and surname both agree on the pair shown.", examples=[True])
    prior_match_weight: float = Field(
        description="Where every pair starts: log2 odds that two random records are one person.", examples=[-21.3]
    )
    comparisons: list[ComparisonTerm] = Field(
        description="The pair's level and weight for each comparison (a waterfall, added to the prior).",
        examples=[[{"comparison": "dob", "level": "exact", "match_weight": 7.9, "bayes_factor": 239.3}]],
    )
    term_frequency_adjustment: float = Field(
        description="Weight added because the agreeing names are rarer (or taken because commoner) than average.",
        examples=[3.9],
    )
    match_weight: float = Field(description="The pair's total: prior + comparisons + adjustment.", examples=[24.3])
    match_probability: float = Field(description="The pair's match probability, 2^w / (1 + 2^w).", examples=[1.0])


class DecidingRule(BaseModel):
    rule: str = Field(
        description="validation, no_candidate, not_corroborated, household, generation, names_disagree, "
        "probability_below_threshold, confident_match, no_return_in_period (or unexplained).",
        examples=["confident_match"],
    )
    text: str = Field(description="The rule in words, with the figures it compared.", examples=["one corroborated..."])


class DisclosedSummary(BaseModel):
    candidate: str | None = Field(description="Which candidate's return was disclosed.", examples=["A"])
    fields: list[str] = Field(description="The fields released.", examples=[["tin_last4", "first_name", "last_name"]])
    tax_year: int = Field(description="The tax year of the return disclosed.", examples=[2024])
    evidence: str = Field(
        description="Which fields agreed, as in disclosed.csv.", examples=["name=exact;address=exact"]
    )


class Explanation(BaseModel):
    """Why the request was decided as it was, read from what the decision was made from."""

    candidates: list[Candidate] = Field(
        description="Every taxpayer considered, strongest first (empty if rejected before matching).", examples=[[]]
    )
    deciding_rule: DecidingRule = Field(
        description="The rule that settled the outcome.",
        examples=[{"rule": "no_candidate", "text": "no taxpayer reached the candidate floor"}],
    )
    probability: float | None = Field(
        description="The probability that the request means the best candidate rather than any other "
        "(null when no candidate got that far).",
        examples=[0.999871],
    )
    best_match_probability: float | None = Field(
        description="The highest match probability of any pair (null if no candidate was found).", examples=[0.999871]
    )
    threshold: float = Field(description="The policy's match threshold.", examples=[0.999])
    disclosed: DisclosedSummary | None = Field(
        description="What was disclosed, or null.",
        examples=[{"candidate": "A", "fields": ["tin_last4"], "tax_year": 2024, "evidence": "name=exact"}],
    )


class LookupResponse(BaseModel):
    """The decision on one request: exactly one outcome."""

    request_id: str = Field(description="The request's id (yours, or the one generated).", examples=["RQ-000123"])
    outcome: Literal["DISCLOSED", "REJECTED", "NOT_MATCHED"] = Field(
        description="DISCLOSED, REJECTED or NOT_MATCHED.", examples=["NOT_MATCHED"]
    )
    reason_codes: list[str] = Field(
        description="Why it was rejected or not matched, in the fixed order of the codes (empty if DISCLOSED).",
        examples=[["BELOW_THRESHOLD"]],
    )
    reasons: str = Field(
        description="The reason codes in words, ';'-separated (empty if DISCLOSED).",
        examples=["the best candidate is not a confident match"],
    )
    disclosure: DisclosureOut | None = Field(
        description="What is disclosed, or null unless the outcome is DISCLOSED.", examples=[None]
    )
    explanation: Explanation | None = Field(
        default=None,
        description="Present only when asked for (?explain=true): why the request was decided as it was.",
        examples=[None],
    )


class ErrorMessage(BaseModel):
    """Why a request was refused (401, 403, 404, 409, 413, 415, 429, 503)."""

    detail: str = Field(
        description="What went wrong, in words; never echoes request values.", examples=["no such batch"]
    )


class Problem(BaseModel):
    field: str = Field(description="The field, dotted for nested ones (`body` for the whole body).", examples=["zip"])
    message: str = Field(description="What is wrong with it.", examples=["String should have at most 1000 characters"])
    type: str = Field(description="A machine-readable kind of problem.", examples=["string_too_long"])


class ValidationProblems(BaseModel):
    """A body or parameter the server cannot read (422): where and what, never the value sent."""

    detail: list[Problem] = Field(
        description="Every problem found.",
        examples=[[{"field": "first_name", "message": "Input should be a valid string", "type": "string_type"}]],
    )


class BatchAccepted(BaseModel):
    batch_id: str = Field(description="The new batch's id.", examples=["b-3f2a9c0d4e5b6a71"])
    status_url: str = Field(
        description="Where to poll its status (also in the Location header).",
        examples=["/v1/batches/b-3f2a9c0d4e5b6a71"],
    )


class OutcomeCounts(BaseModel):
    disclosed: int = Field(description="Requests DISCLOSED so far.", examples=[812], ge=0)
    rejected: int = Field(description="Requests REJECTED so far.", examples=[95], ge=0)
    unmatched: int = Field(description="Requests NOT_MATCHED so far.", examples=[93], ge=0)


class BatchConflict(BaseModel):
    """The same batch was submitted before (same body, agency, as-of date, policy and model)."""

    detail: str = Field(description="What was refused and why.", examples=["batch b-1 was submitted before"])
    batch_id: str = Field(description="The existing batch (its latest run).", examples=["b-5c1f0e2a9d3b"])
    status_url: str = Field(description="Where to poll it.", examples=["/v1/batches/b-5c1f0e2a9d3b"])
    status: str = Field(description="queued, running or done.", examples=["done"])


class BatchStatus(BaseModel):
    batch_id: str = Field(description="The batch's id.", examples=["b-3f2a9c0d4e5b6a71"])
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued, running, done or failed.", examples=["running"]
    )
    processed: int = Field(description="Records decided and accounted for so far.", examples=[1000], ge=0)
    total: int = Field(description="Records in the batch.", examples=[4000], ge=0)
    counts: OutcomeCounts = Field(
        description="Decided records by outcome.", examples=[{"disclosed": 812, "rejected": 95, "unmatched": 93}]
    )
    as_of: str = Field(description="The date the requests are judged on (YYYY-MM-DD).", examples=["2026-11-25"])
    created: str = Field(description="When the batch was accepted (UTC, ISO 8601).", examples=["2026-11-25T14:03:11Z"])
    format: OutputFormat = Field(description="Format of the outcome files: csv, ndjson or parquet.", examples=["csv"])
    error: str | None = Field(
        default=None, description="Why the batch failed (only when status is failed).", examples=["RuntimeError"]
    )


class BatchPage(BaseModel):
    """A page of your agency's batches, newest first."""

    batches: list[BatchStatus] = Field(
        description="The batches on this page.",
        examples=[
            [
                {
                    "batch_id": "b-3f2a9c0d4e5b6a71", "status": "done", "processed": 1000, "total": 1000,
                    "counts": {"disclosed": 812, "rejected": 95, "unmatched": 93}, "as_of": "2026-11-25",
                    "created": "2026-11-25T14:03:11Z", "format": "csv",
                }
            ]
        ],
    )  # fmt: skip
    total: int = Field(description="How many batches your agency has in all.", examples=[42], ge=0)
    limit: int = Field(description="The page size asked for.", examples=[20], ge=1)
    offset: int = Field(description="How many batches come before this page.", examples=[0], ge=0)
    next: str | None = Field(
        description="The URL of the next page, or null on the last page.", examples=["/v1/batches?limit=20&offset=20"]
    )


class ManifestInput(BaseModel):
    file: str = Field(description="What the records were read from.", examples=["HTTP request body (csv)"])
    sha256: str = Field(description="SHA-256 of the body, hex.", examples=["9f2c" + "0" * 60])
    records: int = Field(description="Records in the batch.", examples=[4000], ge=0)


class ManifestCounts(OutcomeCounts):
    total: int = Field(description="All records.", examples=[1000], ge=0)


class BatchManifest(BaseModel):
    """manifest.json of a finished batch: what went in, what came out, under which policy and model."""

    batch_id: str = Field(description="The batch's id.", examples=["b-3f2a9c0d4e5b6a71"])
    agency: str = Field(description="The requesting agency (your key's).", examples=["ICE"])
    as_of: str = Field(description="The date the requests were judged on.", examples=["2026-11-25"])
    input: ManifestInput = Field(
        description="The input.",
        examples=[{"file": "HTTP request body (csv)", "sha256": "9f2c" + "0" * 60, "records": 1000}],
    )
    counts: ManifestCounts = Field(
        description="Records by outcome.",
        examples=[{"disclosed": 812, "rejected": 95, "unmatched": 93, "total": 1000}],
    )
    policy_version: str = Field(description="Version of the policy applied.", examples=["policy-1a2b3c4d"])
    model_version: str = Field(description="Version of the matching model.", examples=["model-5e6f7a8b"])
    taxmatch_version: str = Field(description="Version of taxmatch.", examples=["0.1.0"])
    outputs: dict[str, str] = Field(
        description="SHA-256 (hex) of each outcome file, by file name.", examples=[{"disclosed.csv": "ab12" + "0" * 60}]
    )
    ledger_head: str = Field(
        description="Hash of the last ledger entry when the files were written.", examples=["c0ffee" + "0" * 58]
    )


class LedgerVerification(BaseModel):
    ok: bool = Field(description="True if the hash chain and every signed checkpoint verify.", examples=[True])
    entries: int = Field(description="Entries in the ledger.", examples=[125000], ge=0)
    head: str = Field(description="Hash of the last entry.", examples=["c0ffee" + "0" * 58])
    signed_through: int = Field(description="The last entry a valid signed checkpoint vouches for.", examples=[125000])
    unverified: int = Field(description="Entries after it: hash-chained and durable, not yet signed.", examples=[0])
    first_bad: int | None = Field(default=None, description="The first entry that fails, if any.", examples=[None])
    problem: str = Field(default="", description="What fails, in words (empty if ok).", examples=[""])


class Health(BaseModel):
    status: str = Field(description="ok once the server is ready, starting before.", examples=["ok"])


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route: each code with its body model and meaning."""
    meaning = {
        401: "No API key, or a malformed, unknown or revoked one.",
        403: "Your key's role may not use this route.",
        404: "No such batch or file for your agency (another agency's batch is not found either).",
        409: "The batch is not done yet; its files are ready when it is.",
        413: "The body is larger than the limit, or the batch has too many records.",
        415: "The body is not text/csv or application/x-ndjson.",
        422: "The body or a parameter cannot be read: the fields and problems are listed.",
        429: "A rate or volume limit of your key is reached (Retry-After says when to retry, for the rate limit).",
        503: "The server is starting or stopping, or no master file is loaded.",
    }
    return {
        code: {"model": ValidationProblems if code == 422 else ErrorMessage, "description": meaning[code]}
        for code in codes
    }
