"""On-demand lookup latency over HTTP (DESIGN.md section 7: p50 <= 10 ms, p99 <= 50 ms at 1M people).

Builds a synthetic master of N people (or takes --data DIR with master.csv and
requests.csv), loads it with the CLI, starts `python -m taxmatch.api.server` on 127.0.0.1
(ephemeral port), then:

1. sequential lookups over one keep-alive connection, measuring each round trip;
2. --clients concurrent clients for at most --concurrent-requests lookups or
   --concurrent-seconds seconds, counting errors, reporting throughput.

Prints ONE JSON line. Example (quick run):

    python benchmarks/lookup_latency.py --people 20000 --lookups 2000
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from _common import git_commit, server_env, stop_server
from taxmatch.api.keys import KeyStore, Role
from taxmatch.settings import Workspace

TAXMATCH = str(Path(sys.executable).with_name("taxmatch"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies_ms, 0.50), 2),
        "p90_ms": round(percentile(latencies_ms, 0.90), 2),
        "p99_ms": round(percentile(latencies_ms, 0.99), 2),
        "max_ms": round(max(latencies_ms), 2) if latencies_ms else float("nan"),
        "mean_ms": round(statistics.fmean(latencies_ms), 2) if latencies_ms else float("nan"),
    }


def people_in(data: Path) -> int | None:
    """The synth generator's person count for --data (its meta.json), if it says."""
    try:
        people = json.loads((data / "meta.json").read_text(encoding="utf-8")).get("people")
    except (OSError, ValueError):
        return None
    return people if isinstance(people, int) else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None where there is no /proc.

    On a machine shared with other jobs the wall-clock latency measures the neighbours too; the
    server's CPU time per lookup is what this code spends, whatever the load.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the ")" that ends the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set so far (VmHWM, Linux /proc), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


def per_lookup_ms(before: float | None, after: float | None, lookups: int) -> float | None:
    if before is None or after is None or not lookups:
        return None
    return round((after - before) * 1000 / lookups, 2)


def start_server(home: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    with log.open("w") as stderr:  # the access log, one line per lookup; read only if startup fails
        process = subprocess.Popen(
            [sys.executable, "-m", "taxmatch.api.server", "--home", str(home), "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on http://" not in line:
        process.wait(30)
        raise SystemExit(f"server did not start: {log.read_text()[-3000:]}")
    base_url = line.split("listening on ")[1].split()[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/healthz", timeout=2).json().get("status") == "ok":
                return process, base_url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("server never became healthy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, help="directory with master.csv and requests.csv (skips synth)")
    parser.add_argument("--lookups", type=int, default=2_000, help="sequential lookups measured")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrent-requests", type=int, default=8_000)
    parser.add_argument("--concurrent-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (default: a temporary directory)")
    parser.add_argument(
        "--reuse-master",
        action="store_true",
        help="WORKDIR/home already holds this master (from an earlier run with --workdir): skip the load",
    )
    args = parser.parse_args()
    if args.reuse_master and (args.workdir is None or args.data is None):
        parser.error("--reuse-master needs --workdir (the kept workspace) and --data (its requests)")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="taxmatch-latency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    home, data = workdir / "home", args.data or workdir / "data"
    env = server_env(workdir)
    timings: dict[str, float] = {}
    process: subprocess.Popen[str] | None = None
    try:
        if args.data is None:
            from taxmatch.synth import generate

            started = time.perf_counter()
            generate(data, people=args.people, requests=args.lookups + args.warmup, seed=args.seed,
                     as_of=datetime.date.today())  # fmt: skip
            timings["synth_seconds"] = round(time.perf_counter() - started, 1)
        if not args.reuse_master:
            started = time.perf_counter()
            subprocess.run([TAXMATCH, "--home", str(home), "master", "load", str(data / "master.csv")],
                           env=env, check=True, capture_output=True)  # fmt: skip
            timings["master_load_seconds"] = round(time.perf_counter() - started, 1)
        _, key = KeyStore.for_workspace(Workspace(home)).create("BENCH", Role.REQUESTER)
        with (data / "requests.csv").open(encoding="utf-8", newline="") as handle:
            requests = list(csv.DictReader(handle))
        if not requests:
            raise SystemExit("no requests to send")
        process, base_url = start_server(home, env, workdir / "server.log")
        headers = {"Authorization": f"Bearer {key}"}
        outcomes: dict[str, int] = {}
        with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
            for index in range(args.warmup):
                client.post("/v1/lookup", json=requests[index % len(requests)]).raise_for_status()
            sequential: list[float] = []
            server_cpu_before, client_cpu_before = cpu_seconds(process.pid), time.process_time()
            for index in range(args.lookups):
                body = requests[(args.warmup + index) % len(requests)]
                started = time.perf_counter()
                response = client.post("/v1/lookup", json=body)
                sequential.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                outcome = response.json()["outcome"]
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            server_cpu_sequential = per_lookup_ms(server_cpu_before, cpu_seconds(process.pid), len(sequential))
            client_cpu_sequential = round((time.process_time() - client_cpu_before) * 1000 / len(sequential), 2)

        lock = threading.Lock()
        counter = iter(range(args.concurrent_requests))
        concurrent: list[float] = []
        errors: list[str] = []
        deadline = time.monotonic() + args.concurrent_seconds

        def worker() -> None:
            with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
                while time.monotonic() < deadline:
                    with lock:
                        index = next(counter, None)
                    if index is None:
                        return
                    started = time.perf_counter()
                    try:
                        response = client.post("/v1/lookup", json=requests[index % len(requests)])
                        ok = response.status_code == 200
                        problem = f"HTTP {response.status_code}"
                    except httpx.HTTPError as error:
                        ok, problem = False, type(error).__name__
                    elapsed = (time.perf_counter() - started) * 1000
                    with lock:
                        concurrent.append(elapsed)
                        if not ok:
                            errors.append(problem)

        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        started = time.perf_counter()
        server_cpu_before = cpu_seconds(process.pid)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        server_cpu_concurrent = per_lookup_ms(server_cpu_before, cpu_seconds(process.pid), len(concurrent))
        server_rss = peak_rss_mb(process.pid)
        returns = sum(1 for _ in (data / "master.csv").open(encoding="utf-8")) - 1
        result: dict[str, Any] = {
            "benchmark": "lookup_latency",
            "commit": git_commit(),
            "people": args.people if args.data is None else people_in(data),
            "master_returns": returns,
            **timings,
            "sequential": {
                "lookups": len(sequential),
                **summary(sequential),
                "outcomes": outcomes,
                "server_cpu_ms_per_lookup": server_cpu_sequential,
                "client_cpu_ms_per_lookup": client_cpu_sequential,
            },
            "concurrent": {
                "clients": args.clients,
                "lookups": len(concurrent),
                "errors": len(errors),
                "error_kinds": sorted(set(errors)),
                "seconds": round(wall, 2),
                "throughput_per_s": round(len(concurrent) / wall, 1) if wall else None,
                **summary(concurrent),
                "server_cpu_ms_per_lookup": server_cpu_concurrent,
            },
            "server_peak_rss_mb": server_rss,
            "targets": {"p50_ms": 10, "p99_ms": 50},
            # What else ran: wall-clock figures are only comparable at similar load.
            "load_average_1m": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }
        print(json.dumps(result))
    finally:
        stop_server(process)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
