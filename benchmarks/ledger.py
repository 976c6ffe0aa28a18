"""Ledger speed: append rate into an encrypted workspace DB, export + verify of N entries.

Prints ONE JSON line. Run: ``python benchmarks/ledger.py [--entries 1000000] [--batch 10000]``.
Uses a temporary workspace and an in-process key (never touches ~/.config).
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

from taxmatch.database import DB_KEY_ENVIRONMENT_VARIABLE, connect
from taxmatch.ledger import Ledger, LedgerEvent, export, verify_database, verify_file
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    args = parser.parse_args()
    os.environ[DB_KEY_ENVIRONMENT_VARIABLE] = base64.b64encode(secrets.token_bytes(32)).decode()
    signer = Ed25519PrivateKey.generate()
    pem = public_key_pem(signer.public_key()).encode("ascii")
    with tempfile.TemporaryDirectory(prefix="taxmatch-ledger-bench-") as tmp:
        workspace = Workspace(Path(tmp) / "home")
        con = connect(workspace)
        ledger = Ledger(con)
        ledger.ensure_schema()
        batches = [events(start, min(args.batch, args.entries - start)) for start in range(0, args.entries, args.batch)]
        appended = 0
        started = time.perf_counter()
        for batch in batches:
            with ledger.transaction():
                ledger.append(batch)
            appended += len(batch)
            if appended % args.checkpoint_every == 0:
                ledger.checkpoint(signer)
        append_seconds = time.perf_counter() - started
        ledger.checkpoint(signer)

        out = Path(tmp) / "ledger.jsonl"
        started = time.perf_counter()
        summary = export(con, out, public_key_pem=pem)
        export_seconds = time.perf_counter() - started
        started = time.perf_counter()
        file_result = verify_file(out, pem)
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
                "encrypted_db": True,
                "append_entries_per_s": round(appended / append_seconds),
                "append_s": round(append_seconds, 2),
                "export_s": round(export_seconds, 2),
                "verify_file_s": round(verify_file_seconds, 2),
                "export_plus_verify_s": round(export_seconds + verify_file_seconds, 2),
                "verify_database_s": round(verify_db_seconds, 2),
                "export_mb": round(size / 1e6, 1),
                "export_entries": summary.entries,
                "verified_ok": file_result.ok and db_result.ok and file_result.entries == args.entries,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
            },
            sort_keys=True,
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
