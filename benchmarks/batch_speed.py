"""Batch speed and memory through the real CLI, against plain Splink 5 on the same data. Prints one
JSON line.

    python benchmarks/batch_speed.py [--people 1000000] [--requests 100000] [--seed 7] [--data DIR]
                                     [--skip-splink] [--keep]

Steps, each its own measured process (wall clock, peak RSS from os.wait4): `taxmatch synth`
(unless --data holds a set; 1M people take about a minute, so keep one with --data DIR),
`taxmatch master load` (load + model fit), `taxmatch batch run` (--as-of 2026-11-25), then
benchmarks/_splink_baseline.py on the same files. Targets (DESIGN.md section 7): >= 10,000
requests/s end to end at 1M people, load + fit <= 60 s, peak memory <= 4 GB, and end to end at
least 2x faster than the plain Splink configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import (
    AGENCY,
    AS_OF,
    DEFAULT_SEED,
    StepFailed,
    emit,
    ensure_data,
    git_commit,
    log,
    positive_int,
    run_step,
    workspace,
)

BASELINE = Path(__file__).resolve().parent / "_splink_baseline.py"


def run(args: argparse.Namespace) -> dict[str, Any]:
    with workspace(args.keep, "taxmatch-speed-") as space:
        data, meta, synth_step = ensure_data(space, args.data, args.people, args.requests, args.seed)
        load = run_step("master load", space.taxmatch("master", "load", str(data / "master.csv")), space.env)
        out_dir = space.root / "batch"
        batch = run_step(
            "batch run",
            space.taxmatch(
                "batch", "run", str(data / "requests.csv"), "--agency", AGENCY, "--as-of", AS_OF, "--out", str(out_dir)
            ),
            space.env,
        )
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
        requests = int(manifest["counts"]["total"])
        taxmatch_total = load.seconds + batch.seconds
        result: dict[str, Any] = {
            "benchmark": "batch_speed",
            "people": meta.get("people"),
            "returns": meta.get("returns", {}).get("total"),
            "requests": requests,
            "seed": meta.get("seed"),
            "as_of": meta.get("as_of"),
            "taxmatch": {
                "load_fit_seconds": round(load.seconds, 2),
                "batch_seconds": round(batch.seconds, 2),
                "total_seconds": round(taxmatch_total, 2),
                # User + system CPU of each process (its forked helpers included): on a shared
                # machine the wall clock above moves with the neighbours' load, this much less.
                "cpu_seconds": {"master_load": round(load.cpu_seconds, 2), "batch_run": round(batch.cpu_seconds, 2)},
                # Process wall time, start-up and output files included: what an operator waits for.
                "requests_per_second": round(requests / batch.seconds, 1),
                "peak_rss_mb": {"master_load": round(load.peak_rss_mb), "batch_run": round(batch.peak_rss_mb)},
                "counts": manifest["counts"],
                "model_version": manifest.get("model_version"),
            },
            "synth_seconds": round(synth_step.seconds, 2) if synth_step is not None else None,
            "splink_baseline": None,
            "speedup_end_to_end": None,
        }
        if not args.skip_splink:
            step = run_step("splink baseline", [sys.executable, str(BASELINE), "--data", str(data)], space.env)
            baseline: dict[str, Any] = json.loads(step.stdout.strip().splitlines()[-1])
            baseline["total_seconds"] = round(step.seconds, 2)
            baseline["requests_per_second_end_to_end"] = round(baseline["requests"] / step.seconds, 1)
            baseline["peak_rss_mb"] = round(step.peak_rss_mb)
            result["splink_baseline"] = baseline
            # Both sides as whole processes: reading the files, fitting and predicting.
            result["speedup_end_to_end"] = round(step.seconds / taxmatch_total, 2)
    result["commit"] = git_commit()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=positive_int, default=1_000_000)
    parser.add_argument("--requests", type=positive_int, default=100_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data", type=Path, help="Reuse the synthetic set in DIR (or generate it there).")
    parser.add_argument("--skip-splink", action="store_true", help="Measure taxmatch only.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary workspace and outputs.")
    args = parser.parse_args(argv)
    try:
        emit(run(args))
    except StepFailed as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
