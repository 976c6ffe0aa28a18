"""Validation against synthetic ground truth: are invalid requests caught with the right code,
and are valid ones let through? Prints one JSON line.

    python benchmarks/validation.py [--data DIR] [--people N] [--requests M] [--seed S]

Without --data a set is generated into a temporary directory. The as-of date is the one the
set was generated for (meta.json), since every date rule depends on it.

`throughput` is the CPU time of a fresh process that imports taxmatch, reads the set's
requests.csv with the batch's reader and validates every request: start-up (interpreter,
imports, ZIP table, address model) included, as a batch pays it. CPU rather than wall time,
since the machine is shared.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

from taxmatch.records import RequestRecord
from taxmatch.settings import Policy
from taxmatch.synth import generate, read_truth
from taxmatch.validate import validate_request


def _requests(path: Path) -> list[RequestRecord]:
    with path.open(newline="", encoding="utf-8") as handle:
        records = []
        for line, row in enumerate(csv.DictReader(handle), start=2):

            def value(column: str, row: dict[str, str] = row) -> str | None:
                return (row.get(column) or "").strip() or None

            records.append(
                RequestRecord(
                    request_id=value("request_id"),
                    first_name=value("first_name"),
                    middle_name=value("middle_name"),
                    last_name=value("last_name"),
                    suffix=value("suffix"),
                    dob=value("dob"),
                    tin=value("tin"),
                    street=value("street"),
                    unit=value("unit"),
                    city=value("city"),
                    state=value("state"),
                    zip=value("zip"),
                    a_number=value("a_number"),
                    removal_order_date=value("removal_order_date"),
                    statute=value("statute"),
                    tax_years=value("tax_years"),
                    source_line=line,
                )
            )
        return records


def run(data: Path) -> dict[str, object]:
    meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
    as_of = date.fromisoformat(meta["as_of"])
    policy = Policy.default()
    requests = _requests(data / "requests.csv")
    truth = read_truth(data / "truth.csv")
    if len(requests) != len(truth):
        raise SystemExit(f"{data}: {len(requests)} requests but {len(truth)} truth rows")

    invalid = caught = valid = valid_rejected = 0
    per_code: dict[str, Counter[str]] = {}
    started = time.perf_counter()
    for request, expected in zip(requests, truth, strict=True):
        # DUPLICATE_REQUEST_ID is decided over the batch, not per request.
        if expected["case"] == "duplicate_request_id":
            continue
        codes = {code.value for code in validate_request(request, policy, as_of)}
        if expected["expected_outcome"] == "REJECTED":
            invalid += 1
            wanted = expected["expected_codes"]
            tally = per_code.setdefault(wanted, Counter())
            tally["total"] += 1
            # Under `synth --noise keyed` one request can break two rules (`INVALID_ZIP;INVALID_DOB`).
            if set(wanted.split(";")) <= codes:
                caught += 1
                tally["caught"] += 1
            elif codes:
                tally["other_code"] += 1
            else:
                tally["accepted"] += 1
        else:
            valid += 1
            if codes:
                valid_rejected += 1
    seconds = time.perf_counter() - started
    return {
        "benchmark": "validation",
        "requests": invalid + valid,
        "invalid": invalid,
        "invalid_caught_with_right_code": caught,
        "invalid_caught_rate": round(caught / invalid, 4) if invalid else 1.0,
        "valid_rejected": valid_rejected,
        "valid_rejected_rate": round(valid_rejected / valid, 4) if valid else 0.0,
        "per_code": {code: dict(sorted(tally.items())) for code, tally in sorted(per_code.items())},
        "seconds": round(seconds, 3),
        "throughput": throughput(data, as_of),
    }


# Run in a child process so that nothing is imported or cached beforehand.
_THROUGHPUT_CHILD = """
import datetime, json, resource, sys, time
from taxmatch.io.requests import read_requests
from taxmatch.records import RequestRecord
from taxmatch.settings import Policy
from taxmatch.validate import validate_request
policy, as_of = Policy.default(), datetime.date.fromisoformat(sys.argv[2])
started = time.process_time()
items = list(read_requests(sys.argv[1]))
read = time.process_time()
rejected = sum(1 for item in items if isinstance(item, RequestRecord) and validate_request(item, policy, as_of))
validated = time.process_time()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"records": len(items), "rejected": rejected, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "read_cpu_seconds": read - started, "validate_cpu_seconds": validated - read}))
"""


def throughput(data: Path, as_of: date) -> dict[str, object]:
    """Read + validate the set's requests in a fresh process; its CPU seconds, start-up included."""
    child = subprocess.run(
        [sys.executable, "-c", _THROUGHPUT_CHILD, str(data / "requests.csv"), as_of.isoformat()],
        check=True,
        capture_output=True,
        text=True,
    )
    measured = json.loads(child.stdout)
    cpu = measured["cpu_seconds"]
    return {
        "records": measured["records"],
        "rejected": measured["rejected"],
        "cpu_seconds": round(cpu, 3),
        "read_cpu_seconds": round(measured["read_cpu_seconds"], 3),
        "validate_cpu_seconds": round(measured["validate_cpu_seconds"], 3),
        "records_per_cpu_second": round(measured["records"] / cpu) if cpu else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, help="a directory written by `taxmatch synth`")
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.data is not None:
        result = run(args.data)
    else:
        with tempfile.TemporaryDirectory(prefix="taxmatch-bench-") as tmp:
            generate(Path(tmp), people=args.people, requests=args.requests, seed=args.seed)
            result = run(Path(tmp))
    print(json.dumps(result, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
