"""Ledger speed: append rate into an encrypted workspace DB, export + verify of N entries, and
the per-lookup cost of one entry per transaction once the ledger holds them.

Prints ONE JSON line. Run: ``python benchmarks/ledger.py [--entries 1000000] [--batch 10000]
[--lookups 500] [--event-append]``. Uses a temporary workspace and an in-process key (never
touches ~/.config).

* Bulk append: batches of ``--batch`` entries, each its own transaction, as `taxmatch batch
  run` appends (`Ledger.append_columns`); ``--event-append`` uses `Ledger.append` with one
  `LedgerEvent` per entry instead (what the API's batch chunks still do).
* Lookups (after the bulk append, so the table is as large as ``--entries``): ``--lookups``
  transactions of one entry each, exactly as the API server records a lookup
  (``with ledger.transaction(): ledger.append([event])``, pandas marked absent as the server
  does). ``lookup_ms`` is BEGIN to COMMIT returned, ``lookup_commit_ms`` the COMMIT alone (the
  WAL write and its fsync), ``lookup_cpu_ms`` the process CPU time of a lookup. ``fsync_ms``
  is a 4 KiB append + fsync of a plain file next to the database, taken between lookups: what
  the disk charges for one durable write at that moment (on a shared machine it moves from
  ~0.2 ms to over 10 ms), so the other figures can be read against it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from taxmatch.api.service import skip_absent_pandas
from taxmatch.database import DB_KEY_ENVIRONMENT_VARIABLE, connect
from taxmatch.ledger import EventColumns, Ledger, LedgerEvent, export, verify_database, verify_file
from taxmatch.ledger.model import public_key_pem
from taxmatch.records import Outcome
from taxmatch.settings import Workspace


def events(start: int, count: int) -> list[LedgerEvent]:
    result = []
    for i in range(start, start + count):
        if i % 4 == 0:
            result.append(
                LedgerEvent(
                    agency="ICE",
                    batch_id="bench",
                    request_id=f"req-{i:09d}",
                    outcome=Outcome.DISCLOSED,
                    statute="8 U.S.C. 1326",
                    fields_disclosed=("tin_last4", "first_name", "last_name", "street", "city", "state", "zip"),
                    taxpayer_tin=f"{100000000 + i:09d}",
                    policy_version="policy-bench",
                    model_version="model-bench",
                )
            )
        else:
            result.append(
                LedgerEvent(
                    agency="ICE",
                    batch_id="bench",
                    request_id=f"req-{i:09d}",
                    outcome=Outcome.NOT_MATCHED if i % 2 else Outcome.REJECTED,
                    reason_codes=("AMBIGUOUS",) if i % 2 else ("INVALID_ZIP",),
                    statute="8 U.S.C. 1326",
                    policy_version="policy-bench",
                    model_version="model-bench",
                )
            )
    return result


def columns_of(batch: list[LedgerEvent]) -> EventColumns:
    """The batch as columns (`append_columns`); the batch-wide fields are the same in every event."""
    first = batch[0]
    return EventColumns(
        agency=first.agency,
        actor=first.actor,
        batch_id=first.batch_id,
        legal_basis=first.legal_basis,
        policy_version=first.policy_version,
        model_version=first.model_version,
        request_ids=[event.request_id for event in batch],
        outcomes=[event.outcome for event in batch],
        reason_codes=[event.reason_codes for event in batch],
        statutes=[event.statute for event in batch],
        fields_disclosed=[event.fields_disclosed for event in batch],
        taxpayer_tins=[event.taxpayer_tin for event in batch],
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


def fsync_ms(directory: Path) -> float:
    path = directory / "fsync-probe"
    started = time.perf_counter()
    with path.open("ab") as handle:
        handle.write(b"x" * 4096)
        handle.flush()
        os.fsync(handle.fileno())
    return (time.perf_counter() - started) * 1000


def lookups(ledger: Ledger, count: int, directory: Path) -> dict[str, float]:
    """``count`` one-entry transactions the way the API records a lookup; latencies in ms."""
    total: list[float] = []
    commit: list[float] = []
    cpu: list[float] = []
    disk: list[float] = []
    for i, event in enumerate(events(10**9, count)):
        cpu_started = time.process_time()
        started = time.perf_counter()
        with ledger.transaction():
            ledger.append([event])
            appended = time.perf_counter()
        done = time.perf_counter()
        cpu.append((time.process_time() - cpu_started) * 1000)
        total.append((done - started) * 1000)
        commit.append((done - appended) * 1000)
        if i % 10 == 0:
            disk.append(fsync_ms(directory))
    return {
        "lookup_ms_p50": percentile(total, 0.5),
        "lookup_ms_p99": percentile(total, 0.99),
        "lookup_commit_ms_p50": percentile(commit, 0.5),
        "lookup_commit_ms_p99": percentile(commit, 0.99),
        "lookup_cpu_ms_p50": percentile(cpu, 0.5),
        "fsync_ms_p50": percentile(disk, 0.5),
        "fsync_ms_p99": percentile(disk, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=500, help="one-entry transactions after the bulk append")
    parser.add_argument("--event-append", action="store_true", help="bulk append with Ledger.append (LedgerEvents)")
    args = parser.parse_args()
    skip_absent_pandas()
    os.environ[DB_KEY_ENVIRONMENT_VARIABLE] = base64.b64encode(secrets.token_bytes(32)).decode()
    signer = Ed25519PrivateKey.generate()
    pem = public_key_pem(signer.public_key()).encode("ascii")
    with tempfile.TemporaryDirectory(prefix="taxmatch-ledger-bench-") as tmp:
        workspace = Workspace(Path(tmp) / "home")
        con = connect(workspace)
        ledger = Ledger(con)
        ledger.ensure_schema()
        batches = [events(start, min(args.batch, args.entries - start)) for start in range(0, args.entries, args.batch)]
        by_column = [columns_of(batch) for batch in batches]
        appended = 0
        started = time.perf_counter()
        for batch, columns in zip(batches, by_column, strict=True):
            with ledger.transaction():
                if args.event_append:
                    ledger.append(batch)
                else:
                    ledger.append_columns(columns)
            appended += len(batch)
            if appended % args.checkpoint_every == 0:
                ledger.checkpoint(signer)
        append_seconds = time.perf_counter() - started
        ledger.checkpoint(signer)
        lookup_figures = lookups(ledger, args.lookups, Path(tmp)) if args.lookups else {}
        ledger.checkpoint(signer)  # as `ledger export` does: verification requires a ledger signed to its end

        out = Path(tmp) / "ledger.jsonl"
        started = time.perf_counter()
        summary = export(con, out, public_key_pem=pem)
        export_seconds = time.perf_counter() - started
        started = time.perf_counter()
        file_result = verify_file(out, pem)
        entries = args.entries + args.lookups
        verify_file_seconds = time.perf_counter() - started
        started = time.perf_counter()
        db_result = verify_database(con, pem)
        verify_db_seconds = time.perf_counter() - started
        size = out.stat().st_size
        con.close()
    print(
        json.dumps(
            {
                "benchmark": "ledger",
                "entries": args.entries,
                "batch": args.batch,
                "append_path": "events" if args.event_append else "columns",
                "lookups": args.lookups,
                **lookup_figures,
                "encrypted_db": True,
                "append_entries_per_s": round(appended / append_seconds),
                "append_s": round(append_seconds, 2),
                "export_s": round(export_seconds, 2),
                "verify_file_s": round(verify_file_seconds, 2),
                "export_plus_verify_s": round(export_seconds + verify_file_seconds, 2),
                "verify_database_s": round(verify_db_seconds, 2),
                "export_mb": round(size / 1e6, 1),
                "export_entries": summary.entries,
                "verified_ok": file_result.ok and db_result.ok and file_result.entries == entries,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            sort_keys=True,
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
