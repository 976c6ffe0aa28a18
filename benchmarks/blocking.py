"""Blocking recall and candidate counts on synthetic ground truth; prints one JSON line.

For every request that should be disclosed: is a pair with the right taxpayer blocked at all,
and is one of them at a corroborating address level? And how many pairs (and taxpayers) does
each request bring to the decision rule?

    python benchmarks/blocking.py [--people 20000] [--requests 5000] [--seed 7] [--data DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.io.master import MAX_REJECTED_SHARE
from taxmatch.io.requests import read_requests
from taxmatch.match.decide import CORROBORATING_ADDRESS_LEVELS
from taxmatch.records import RequestRecord
from taxmatch.settings import Policy
from taxmatch.synth import generate
from taxmatch.validate import validate_request

AS_OF = datetime.date(2026, 11, 25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--misses", type=Path, help="Write the request ids whose taxpayer was not blocked here.")
    parser.add_argument(
        "--max-rejected-share",
        type=float,
        default=MAX_REJECTED_SHARE,
        help="As `master load --max-rejected-share` (FEBRL2: 1.2%% of originals have no surname).",
    )
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="taxmatch-blocking-"))
    if not (data / "master.csv").exists():
        generate(data, people=args.people, requests=args.requests, seed=args.seed, as_of=AS_OF)
    engine = DuckDBEngine(duckdb.connect())
    started = time.perf_counter()
    engine.load_master([data / "master.csv"], lambda problem: None, max_rejected_share=args.max_rejected_share)
    engine.fit_model()
    print(f"loaded in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    with (data / "truth.csv").open(encoding="utf-8", newline="") as handle:
        truth = {row["request_id"]: row for row in csv.DictReader(handle)}
    policy, seen = Policy.default(), set()
    requests: list[tuple[int, RequestRecord]] = []
    for index, item in enumerate(read_requests(data / "requests.csv")):
        if isinstance(item, RequestRecord) and item.request_id not in seen:
            seen.add(str(item.request_id))
            if not validate_request(item, policy, AS_OF):
                requests.append((index, item))
    pairs_by_request = defaultdict(list)
    for pair in engine.score(requests):
        pairs_by_request[pair.request_index].append(pair)
    findable = blocked = corroborated = 0
    missed: list[str] = []
    for index, request in requests:
        expected = truth[str(request.request_id)]
        if expected["expected_outcome"] != "DISCLOSED":
            continue
        findable += 1
        own = [pair for pair in pairs_by_request[index] if pair.tin == expected["expected_tin"]]
        blocked += bool(own)
        if not own:
            missed.append(str(request.request_id))
        corroborated += any(pair.address_level in CORROBORATING_ADDRESS_LEVELS for pair in own)
    if args.misses:
        args.misses.write_text("".join(f"{request_id}\n" for request_id in missed), encoding="utf-8")
    meta_path = data / "meta.json"
    people = json.loads(meta_path.read_text(encoding="utf-8")).get("people") if meta_path.exists() else args.people
    pair_counts = sorted(len(pairs_by_request[index]) for index, _ in requests)
    taxpayer_counts = sorted(len({pair.tin for pair in pairs_by_request[index]}) for index, _ in requests)
    print(
        json.dumps(
            {
                "benchmark": "blocking",
                "data": str(args.data) if args.data else None,
                "people": people,
                "valid_requests": len(requests),
                "findable": findable,
                "blocking_recall": round(blocked / findable, 6) if findable else None,
                "corroborated_recall": round(corroborated / findable, 6) if findable else None,
                "pairs_per_request": {
                    "mean": round(statistics.fmean(pair_counts), 1),
                    "p99": pair_counts[int(len(pair_counts) * 0.99)],
                    "max": pair_counts[-1],
                },
                "taxpayers_per_request": {
                    "mean": round(statistics.fmean(taxpayer_counts), 1),
                    "p99": taxpayer_counts[int(len(taxpayer_counts) * 0.99)],
                    "max": taxpayer_counts[-1],
                },
                "note": "pairs counted after dropping taxpayers below MIN_CANDIDATE_WEIGHT",
            }
        )
    )


if __name__ == "__main__":
    main()
