"""Both engines on one synthetic population, through the real CLI; prints one JSON line.

    python benchmarks/engine_scaling.py [--people 200000] [--requests 20000] [--seed 7] [--data DIR]
                                        [--request-limit N] [--engines duckdb,spark]
                                        [--spark-master local[2]] [--lock /tmp/bench.lock] [--keep]

For each engine, `taxmatch --engine E master load` then `batch run` (each its own measured
process: wall clock, CPU seconds of the process and the children it reaped, and peak RSS; the
load's own split of load and fit, the batch's own time without process start-up). `--request-limit`
runs the batch on the first N requests of the set's file. For Spark, each step's jobs are read
from Spark's event log: wall seconds, tasks' run time and the JVM's CPU time per job, named by
what the engine was doing (`SparkEngine._describe`). `--lock` runs each step under `flock PATH`,
so that heavy steps of several benchmarks do not overlap (the wait is not timed). Then, over the loaded workspace, what
makes a batch cost more as the population grows: blocked pairs per request (every distinct
(request row, profile) pair that some blocking key joins, before scoring; and what each key alone
joins) and the largest blocks (profiles sharing one key value), per key. `identical_outputs` says
whether every engine wrote the same disclosed/rejected/unmatched bytes as the first.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import fcntl
import json
import os
import re
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa

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
    taxmatch_command,
    workspace,
)
from taxmatch.database import open_database
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.spark_scoring import GAMMA_COMPARISONS, SIDE_COLUMNS, pair_scorer, standardize_requests
from taxmatch.io.requests import read_requests
from taxmatch.match.blocking import BLOCK_KEY_JOINS, MASTER_KEY_COLUMNS
from taxmatch.match.request_inputs import request_input_table
from taxmatch.records import RequestRecord
from taxmatch.settings import Workspace
from taxmatch.validate import validate_request

OUTCOME_FILES = ("disclosed.csv", "rejected.csv", "unmatched.csv")
_LOAD_LINE = re.compile(r"in ([\d.]+)s; model \S+ fitted in ([\d.]+)s")
_BATCH_LINE = re.compile(r"([\d.]+)s \(([\d.,]+) requests/s\)")


def blocking_figures(home: Path, requests_file: Path) -> dict[str, Any]:
    """Blocked pairs per request row and the largest blocks, over a loaded workspace (DuckDB SQL)."""
    workspace = Workspace.resolve(home)
    policy = workspace.load_policy()
    opened = open_database(workspace)
    try:
        engine = DuckDBEngine(opened.connection)
        as_of = datetime.date.fromisoformat(AS_OF)
        valid = [
            (index, item)
            for index, item in enumerate(read_requests(requests_file))
            if isinstance(item, RequestRecord) and not validate_request(item, policy, as_of)
        ]
        engine._stage_requests(request_input_table(valid))
        con = opened.connection
        union = " UNION ".join(
            f"SELECT l.unique_id, r.return_id FROM request_inputs l JOIN master_profiles r ON l.{left} = r.{right}"
            for left, right in BLOCK_KEY_JOINS
        )
        found = con.execute(f"SELECT count(*) FROM ({union})").fetchone()
        # What each key alone joins (a pair found by two keys counts in both).
        by_key: dict[str, int] = defaultdict(int)
        for left, right in BLOCK_KEY_JOINS:
            joined = con.execute(
                f"SELECT count(*) FROM request_inputs l JOIN master_profiles r ON l.{left} = r.{right}"
            ).fetchone()
            by_key[left] += int(joined[0]) if joined else 0
        rows = con.execute("SELECT count(*) FROM request_inputs").fetchone()
        profiles = con.execute("SELECT count(*) FROM master_profiles").fetchone()
        assert found is not None and rows is not None and profiles is not None
        largest: dict[str, int] = {}
        for column in MASTER_KEY_COLUMNS:
            biggest = con.execute(
                f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM master_profiles "
                f"WHERE {column} IS NOT NULL GROUP BY {column})"
            ).fetchone()
            largest[column] = int(biggest[0]) if biggest else 0
        rates = executor_rates(engine, valid, union)
        return {
            **rates,
            "profiles": int(profiles[0]),
            "request_rows": int(rows[0]),
            "blocked_pairs": int(found[0]),
            "blocked_pairs_per_request_row": round(int(found[0]) / max(int(rows[0]), 1), 2),
            "valid_requests": len(valid),
            "blocked_pairs_per_valid_request": round(int(found[0]) / max(len(valid), 1), 2),
            "pairs_per_request_row_by_key": {key: round(n / max(int(rows[0]), 1), 2) for key, n in by_key.items()},
            "largest_block_by_key": largest,
        }
    finally:
        opened.connection.close()


def executor_rates(engine: DuckDBEngine, valid: list[tuple[int, RequestRecord]], union: str) -> dict[str, Any]:
    """What a Spark executor does per request row and per pair, on one core in this process: the
    per-core rates the plan in docs/scale.md is computed from (Spark's own costs come on top).
    CPU time of this process, not wall time: on a shared machine the wall clock counts other work."""
    inputs = request_input_table(valid)
    started = time.process_time()
    standardized = sum(batch.num_rows for batch in standardize_requests(inputs.to_batches()))
    standardize_seconds = time.process_time() - started
    sides = ", ".join(f"l.{column} AS l_{column}, r.{column} AS r_{column}" for column in SIDE_COLUMNS)
    rows = (
        engine.connection.execute(
            f"SELECT l.request_index, p.unique_id, p.return_id, {sides} FROM ({union}) p "
            "JOIN request_inputs l ON l.unique_id = p.unique_id JOIN master_profiles r ON r.return_id = p.return_id"
        )
        .to_arrow_table()
        .to_pylist()
    )
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(int(row["request_index"]), []).append(row)
    _, compiled = engine._scorer()
    gammas = {
        name: {label: gamma for gamma, label in compiled.level_labels[name].items()} for name in GAMMA_COMPARISONS
    }
    score = pair_scorer(engine._python_scorer(), gammas)
    started = time.process_time()
    kept = sum(score(pa.Table.from_pylist(group)).num_rows for group in groups.values())
    score_seconds = time.process_time() - started
    return {
        "executor_standardize_rows_per_cpu_second": round(standardized / max(standardize_seconds, 1e-9)),
        "executor_score_pairs_per_cpu_second": round(len(rows) / max(score_seconds, 1e-9)),
        "candidate_pairs_kept": kept,
    }


def first_requests(source: Path, limit: int, target: Path) -> Path:
    """The first `limit` requests of `source` (CSV, header kept) written to `target`."""
    with source.open(encoding="utf-8", newline="") as read, target.open("w", encoding="utf-8", newline="") as write:
        rows = csv.reader(read)
        writer = csv.writer(write)
        writer.writerow(next(rows))
        for number, row in enumerate(rows):
            if number == limit:
                break
            writer.writerow(row)
    return target


def count_requests(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as read:
        return sum(1 for _ in csv.reader(read)) - 1


def measured_step(name: str, argv: list[str], env: dict[str, str], lock: Path | None) -> tuple[Any, float]:
    """`run_step`, and the CPU seconds (user + system) of the step's whole process tree.

    The Spark driver leaves its JVM to exit on its own, unreaped; this process becomes the
    reaper of such orphans (Linux's child subreaper) and waits for them, so that their CPU time
    (and that of the Python workers they reaped) is counted too. With `lock`, the step runs holding
    it (flock(2), as the `flock` command takes it), taken before its clock starts."""
    _become_subreaper()
    with contextlib.ExitStack() as stack:
        if lock is not None:
            held = stack.enter_context(lock.open("a"))
            fcntl.flock(held, fcntl.LOCK_EX)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        step = run_step(name, argv, env)
        after_step = _reap_orphans(before)
    return step, after_step


def _reap_orphans(before: resource.struct_rusage) -> float:
    """Wait (up to two minutes) for the step's orphaned descendants; CPU seconds since `before`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break  # every descendant reaped
        if pid == 0:
            time.sleep(0.2)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 1)


def _become_subreaper() -> None:
    """Orphaned descendants of the steps are reparented to this process (prctl PR_SET_CHILD_SUBREAPER)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def spark_event_env(env: dict[str, str], folder: Path) -> dict[str, str]:
    """The step's environment with Spark's event log written to `folder` (read by `spark_jobs`)."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = (
        f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir={folder.as_uri()} "
        "--conf spark.eventLog.compress=false --conf spark.eventLog.rolling.enabled=false"
    )
    return {**env, "PYSPARK_SUBMIT_ARGS": f"{conf} pyspark-shell"}


def spark_jobs(folder: Path) -> dict[str, dict[str, float]]:
    """Each kind of job of a Spark step (its description), from the event log: how many, their wall
    seconds, their tasks' run seconds (Python workers' time inside) and the JVM's CPU seconds."""
    jobs: dict[str, dict[str, float]] = {}
    job_of_stage: dict[int, str] = {}
    started: dict[int, tuple[str, float]] = {}
    for path in sorted(found for found in folder.rglob("*") if found.is_file() and "appstatus" not in found.name):
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            kind = event.get("Event")
            if kind == "SparkListenerJobStart":
                name = str(event.get("Properties", {}).get("spark.job.description") or "(undescribed)")
                name = name.removeprefix("taxmatch: ")
                started[event["Job ID"]] = (name, event["Submission Time"])
                for stage in event["Stage IDs"]:
                    job_of_stage[stage] = name
                entry = jobs.setdefault(name, {"jobs": 0, "seconds": 0.0, "task_seconds": 0.0, "jvm_cpu_seconds": 0.0})
                entry["jobs"] += 1
            elif kind == "SparkListenerJobEnd" and event["Job ID"] in started:
                name, submitted = started.pop(event["Job ID"])
                jobs[name]["seconds"] += (event["Completion Time"] - submitted) / 1000
            elif kind == "SparkListenerTaskEnd" and event.get("Stage ID") in job_of_stage:
                metrics = event.get("Task Metrics") or {}
                entry = jobs[job_of_stage[event["Stage ID"]]]
                entry["task_seconds"] += metrics.get("Executor Run Time", 0) / 1000
                entry["jvm_cpu_seconds"] += metrics.get("Executor CPU Time", 0) / 1e9
    return {name: {key: round(value, 2) for key, value in entry.items()} for name, entry in jobs.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    with workspace(args.keep, "taxmatch-engines-") as space:
        data, meta, _ = ensure_data(space, args.data, args.people, args.requests, args.seed)
        requests_file = data / "requests.csv"
        if args.request_limit:
            requests_file = first_requests(requests_file, args.request_limit, space.root / "requests.csv")
        result: dict[str, Any] = {
            "benchmark": "engine_scaling",
            "people": meta.get("people"),
            "returns": meta.get("returns", {}).get("total"),
            "requests": count_requests(requests_file),
            "spark_master": args.spark_master,
            "engines": {},
        }
        outputs: dict[str, Path] = {}
        for engine in engines:
            home, out = space.root / f"home-{engine}", space.root / f"out-{engine}"
            options = ["--engine", engine, "--spark-master", args.spark_master, "--home", str(home)]
            logs = {step: space.root / f"spark-events-{engine}-{step}" for step in ("load", "batch")}
            load, load_cpu = measured_step(
                f"{engine}: master load",
                [*taxmatch_command(), *options, "master", "load", str(data / "master.csv")],
                spark_event_env(space.env, logs["load"]) if engine == "spark" else space.env,
                args.lock,
            )  # fmt: skip
            batch, batch_cpu = measured_step(
                f"{engine}: batch run",
                [
                    *taxmatch_command(), *options, "batch", "run", str(requests_file),
                    "--agency", AGENCY, "--as-of", AS_OF, "--out", str(out),
                ],
                spark_event_env(space.env, logs["batch"]) if engine == "spark" else space.env,
                args.lock,
            )  # fmt: skip
            loaded = _LOAD_LINE.search(load.stdout)
            batched = _BATCH_LINE.search(batch.stdout)
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            result["engines"][engine] = {
                "load_process_seconds": round(load.seconds, 2),
                "load_seconds": float(loaded.group(1)) if loaded else None,
                # For spark: the fit and the Parquet written under the warehouse.
                "fit_seconds": float(loaded.group(2)) if loaded else None,
                "load_process_cpu_seconds": load_cpu,
                "batch_process_seconds": round(batch.seconds, 2),
                "batch_process_cpu_seconds": batch_cpu,
                "batch_seconds": float(batched.group(1)) if batched else None,
                "requests_per_second": round(int(manifest["counts"]["total"]) / batch.seconds, 1),
                "peak_rss_mb": {"master_load": round(load.peak_rss_mb), "batch_run": round(batch.peak_rss_mb)},
                "counts": manifest["counts"],
            }
            if engine == "spark":
                result["engines"][engine]["spark_jobs"] = {step: spark_jobs(folder) for step, folder in logs.items()}
            outputs[engine] = out
            if engine == engines[0]:
                # The workspace's key file, which the steps were given.
                os.environ["TAXMATCH_KEY_FILE"] = space.env["TAXMATCH_KEY_FILE"]
                result["blocking"] = blocking_figures(home, requests_file)
        if "spark" in engines:
            # What every Spark command pays before its first job: the JVM and the session (and their stop).
            started = run_step(
                "spark: session start",
                [sys.executable, "-c", f"from taxmatch.engine.spark_engine import spark_session; "
                 f"spark_session({args.spark_master!r}).stop()"],
                space.env,
            )  # fmt: skip
            result["spark_session_start_seconds"] = round(started.seconds, 2)
        first = outputs[engines[0]]
        result["identical_outputs"] = all(
            (out / name).read_bytes() == (first / name).read_bytes()
            for out in outputs.values()
            for name in OUTCOME_FILES
        )
    result["commit"] = git_commit()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=positive_int, default=200_000)
    parser.add_argument("--requests", type=positive_int, default=20_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data", type=Path, help="Reuse the synthetic set in DIR (or generate it there).")
    parser.add_argument("--request-limit", type=positive_int, help="Run the batch on the first N requests only.")
    parser.add_argument("--lock", type=Path, help="Run each engine step under `flock LOCK`.")
    parser.add_argument("--engines", default="duckdb,spark", help="Comma-separated engines, the first the reference.")
    parser.add_argument("--spark-master", default="local[2]")
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
