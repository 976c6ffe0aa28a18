"""Request-size, rate and volume limits of the HTTP API, and batch processing knobs.

Every value is a module-level default that an environment variable of the same name
(prefixed ``TAXMATCH_API_``) overrides when the server starts; docs/api.md lists them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

# Largest accepted body of POST /v1/lookup (one request object).
MAX_LOOKUP_BODY_BYTES = 64 * 1024
# Largest accepted body of POST /v1/batches; bigger batches go through `taxmatch batch run`.
MAX_BATCH_BODY_BYTES = 64 * 1024 * 1024
# Largest number of records in one API batch.
MAX_BATCH_RECORDS = 250_000
# Requests (any route but /healthz) one key may make per rolling minute.
RATE_LIMIT_PER_MINUTE = 600
# Status polls (GET /v1/batches/{id}) one key may make per rolling minute: counted apart from the
# requests above, so polling a long batch never uses up the key's lookups and submissions.
STATUS_POLLS_PER_MINUTE = 6_000
# Lookups plus batch records one key may submit per rolling 24 hours.
VOLUME_LIMIT_PER_DAY = 1_000_000
# Batches one key may have queued or running at once.
MAX_ACTIVE_BATCHES_PER_KEY = 4
# Records decided per persisted step of a batch: the unit of resume after a restart, and
# the longest a lookup waits behind the batch worker for the database.
BATCH_CHUNK_RECORDS = 2_000
# Test-only: seconds the batch worker sleeps after each chunk (lets a test kill the
# server while a batch is half done). Always 0 in production.
BATCH_CHUNK_DELAY_SECONDS = 0.0

# Lookups are accounted one by one but signed in groups: a signed ledger checkpoint is
# taken with the lookup that makes the unsigned ones this many, or this old (seconds), and
# at shutdown. Bounds the unsigned tail a crash can leave (still hash-chained and durable).
LEDGER_CHECKPOINT_LOOKUPS = 1_000
LEDGER_CHECKPOINT_SECONDS = 60.0

# Lookups decided at once, each on a database cursor of its own (their ledger entries are
# still appended one transaction at a time, several lookups per transaction under load).
LOOKUP_THREADS = 4
# Threads on which decided lookups wait for the group commit of their ledger entries, per lookup
# thread: how many lookups one commit can take at most (docs/api.md, Ledger).
ACCOUNTING_THREADS_PER_LOOKUP_THREAD = 8

# The connection guard (api/guard.py): a request head must be complete this long after the
# connection (or after its first byte following a keep-alive pause), however it trickles in.
HEADER_TIMEOUT_SECONDS = 10.0
# A body gets this long plus one second per BODY_MIN_BYTES_PER_SECOND received.
BODY_TIMEOUT_SECONDS = 30.0
BODY_MIN_BYTES_PER_SECOND = 16 * 1024
# An idle connection after a response is closed after this many seconds.
KEEP_ALIVE_SECONDS = 5
# Open client connections at most; lowered at start to stay below the open-file limit.
MAX_CONNECTIONS = 10_000
# A full ledger verification for GET /v1/ledger/verify runs at most once per this many seconds;
# a call in between gets the last result (its entries and head say which ledger it covered).
VERIFY_MIN_INTERVAL_SECONDS = 10.0

ENVIRONMENT_PREFIX = "TAXMATCH_API_"
ZERO_ALLOWED = frozenset({"batch_chunk_delay_seconds", "verify_min_interval_seconds"})


@dataclass(frozen=True)
class ApiLimits:
    max_lookup_body_bytes: int = MAX_LOOKUP_BODY_BYTES
    max_batch_body_bytes: int = MAX_BATCH_BODY_BYTES
    max_batch_records: int = MAX_BATCH_RECORDS
    rate_limit_per_minute: int = RATE_LIMIT_PER_MINUTE
    status_polls_per_minute: int = STATUS_POLLS_PER_MINUTE
    volume_limit_per_day: int = VOLUME_LIMIT_PER_DAY
    max_active_batches_per_key: int = MAX_ACTIVE_BATCHES_PER_KEY
    batch_chunk_records: int = BATCH_CHUNK_RECORDS
    batch_chunk_delay_seconds: float = BATCH_CHUNK_DELAY_SECONDS
    ledger_checkpoint_lookups: int = LEDGER_CHECKPOINT_LOOKUPS
    ledger_checkpoint_seconds: float = LEDGER_CHECKPOINT_SECONDS
    lookup_threads: int = LOOKUP_THREADS
    header_timeout_seconds: float = HEADER_TIMEOUT_SECONDS
    body_timeout_seconds: float = BODY_TIMEOUT_SECONDS
    body_min_bytes_per_second: int = BODY_MIN_BYTES_PER_SECOND
    keep_alive_seconds: int = KEEP_ALIVE_SECONDS
    max_connections: int = MAX_CONNECTIONS
    verify_min_interval_seconds: float = VERIFY_MIN_INTERVAL_SECONDS

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ApiLimits:
        """Defaults, overridden by ``TAXMATCH_API_<NAME>`` variables (e.g. TAXMATCH_API_RATE_LIMIT_PER_MINUTE)."""
        source = dict(os.environ) if environ is None else environ
        values: dict[str, int | float] = {}
        for item in fields(cls):
            raw = source.get(ENVIRONMENT_PREFIX + item.name.upper())
            if raw is None or not raw.strip():
                continue
            try:
                value: int | float = float(raw) if item.type in ("float", float) else int(raw)
            except ValueError as error:
                raise ValueError(f"{ENVIRONMENT_PREFIX}{item.name.upper()}={raw!r} is not a number") from error
            if value < 0 or (value == 0 and item.name not in ZERO_ALLOWED):
                raise ValueError(f"{ENVIRONMENT_PREFIX}{item.name.upper()} must be positive")
            values[item.name] = value
        return cls(**values)  # type: ignore[arg-type]
