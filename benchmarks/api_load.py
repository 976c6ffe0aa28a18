"""The API under abuse on loopback (issue 13): lookups next to idle sockets and a looping auditor.

Builds a synthetic master of --people persons, loads it with the CLI, fills the ledger with a
`taxmatch batch run` of --ledger-requests requests (so that a verification costs something), starts
`python -m taxmatch.api.server` on 127.0.0.1 (ephemeral port, default limits but the per-key
rate and volume limits), then measures, each phase bounded in time:

1. single: one client, sequential lookups over one keep-alive connection (--single-lookups);
2. quiet: --clients client threads doing lookups for --quiet-seconds, nothing else;
3. load: the same clients for --seconds next to --idle-sockets idle sockets (each closed by the
   server's head deadline is opened again, so the count holds), an auditor looping on
   GET /v1/ledger/verify as fast as its key's default rate limit allows (600 a minute; the
   limits are lifted for the benchmark, so the auditor paces itself), and a /healthz probe
   every 0.5 s.

Errors are every non-200 answer and every transport error, of lookups, of the auditor and of the
probe. The soft open-file limit of this process is raised (to the hard limit) if the idle sockets
need it. Prints ONE JSON line, with the issue's three checks:

- 0 errors; lookup p50 under load <= 2x quiet p50; throughput under load >= 500 lookups/s.

    python benchmarks/api_load.py --people 5000 --seconds 30
    python benchmarks/api_load.py --workdir W --reuse-master --data DIR   # a loaded workspace W/home (1M)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from _common import git_commit, server_env, stop_server
from lookup_latency import cpu_seconds, peak_rss_mb, people_in, start_server, summary
from taxmatch.api.keys import KeyStore, Role
from taxmatch.api.limits import RATE_LIMIT_PER_MINUTE
from taxmatch.settings import Workspace

TAXMATCH = str(Path(sys.executable).with_name("taxmatch"))
PROBE_INTERVAL_SECONDS = 0.5


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, started: float, problem: str | None) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latencies_ms.append(elapsed)
            if problem is not None:
                self.errors.append(problem)


def call(client: httpx.Client, method: str, path: str, tally: Tally, **kwargs: Any) -> None:
    started = time.perf_counter()
    try:
        response = client.request(method, path, **kwargs)
        problem = None if response.status_code == 200 else f"HTTP {response.status_code}"
    except httpx.HTTPError as error:
        problem = type(error).__name__
    tally.add(started, problem)


def lookups(base_url: str, key: str, bodies: list[dict[str, str]], clients: int, seconds: float) -> tuple[Tally, float]:
    """``clients`` threads looking up for ``seconds``; the tally and the wall time."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {key}"}

    def worker(offset: int) -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            index = offset
            while time.monotonic() < deadline:
                call(client, "POST", "/v1/lookup", tally, json=bodies[index % len(bodies)])
                index += clients

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - started


class IdleSockets:
    """Holds ``count`` connected sockets that never send a byte; reopens those the server closes."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self.address = (host, port)
        self.count = count
        self.reopened = 0
        self.failed_connects = 0
        self.open_at_end = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._selector = selectors.DefaultSelector()

    def _connect(self) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=5)
        except OSError:
            self.failed_connects += 1
            return
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)

    def start(self) -> None:
        for _ in range(self.count):
            self._connect()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for selected, _ in self._selector.select(timeout=0.2):
                sock = selected.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    closed = sock.recv(1) == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    self._selector.unregister(sock)
                    sock.close()
                    self.reopened += 1
                    self._connect()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.open_at_end = len(self._selector.get_map())
        for selected in list(self._selector.get_map().values()):
            selected.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()


def loop_until(stop: threading.Event, interval: float, action: Any) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            action()
            if interval:
                stop.wait(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def raise_open_files(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and (hard == resource.RLIM_INFINITY or soft < hard):
        target = hard if hard != resource.RLIM_INFINITY else needed
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--requests", type=int, default=2_000, help="distinct lookup bodies, cycled")
    parser.add_argument(
        "--ledger-requests", type=int, default=50_000, help="requests of a batch run that fills the ledger first"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0, help="the load phase")
    parser.add_argument("--quiet-seconds", type=float, default=10.0, help="the quiet phase (same clients)")
    parser.add_argument("--single-lookups", type=int, default=300)
    parser.add_argument("--idle-sockets", type=int, default=1_000)
    parser.add_argument(
        "--auditor-interval",
        type=float,
        default=60 / RATE_LIMIT_PER_MINUTE,
        help="seconds between the auditor's verify calls (default: as fast as the per-key rate limit allows)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (default: a temporary directory)")
    parser.add_argument("--data", type=Path, help="with --reuse-master: the directory of the master's requests.csv")
    parser.add_argument(
        "--reuse-master",
        action="store_true",
        help="WORKDIR/home already holds a loaded master (and its ledger) of --data: no synth, load or batch run",
    )
    args = parser.parse_args()
    if args.reuse_master and (args.workdir is None or args.data is None):
        parser.error("--reuse-master needs --workdir (the kept workspace) and --data (its requests)")

    open_files = raise_open_files(args.idle_sockets + 4 * args.clients + 256)
    if open_files < args.idle_sockets + 64:
        raise SystemExit(f"the open-file limit ({open_files}) is too low for {args.idle_sockets} idle sockets")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="taxmatch-api-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    home, data = workdir / "home", args.data if args.reuse_master else workdir / "data"
    env = server_env(workdir)
    process: subprocess.Popen[str] | None = None
    try:
        if not args.reuse_master:
            from taxmatch.synth import generate

            print(f"synth {args.people} people, master load ...", file=sys.stderr)
            drawn = max(args.requests, args.ledger_requests)
            generate(data, people=args.people, requests=drawn, seed=args.seed, as_of=datetime.date.today())
            subprocess.run([TAXMATCH, "--home", str(home), "master", "load", str(data / "master.csv")],
                           env=env, check=True, capture_output=True)  # fmt: skip
        if args.ledger_requests and not args.reuse_master:
            # A ledger of some size before the server starts, so that the auditor's verifications cost
            # what they cost in an office that has been running for a while.
            print(f"batch run of {args.ledger_requests} requests to fill the ledger ...", file=sys.stderr)
            batch = [TAXMATCH, "--home", str(home), "batch", "run", str(data / "requests.csv"), "--agency", "BENCH"]
            subprocess.run([*batch, "--out", str(workdir / "batch")], env=env, check=True, capture_output=True)
        store = KeyStore.for_workspace(Workspace(home))
        _, requester = store.create("BENCH", Role.REQUESTER)
        _, auditor = store.create("BENCH", Role.AUDITOR)
        import csv

        with (data / "requests.csv").open(encoding="utf-8", newline="") as handle:
            bodies = list(csv.DictReader(handle))[: args.requests]
        process, base_url = start_server(home, env, workdir / "server.log")
        host, port = base_url.removeprefix("http://").rsplit(":", 1)

        print("single client ...", file=sys.stderr)
        single = Tally()
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {requester}"}, timeout=60) as client:
            for index in range(20):  # warm-up
                client.post("/v1/lookup", json=bodies[index % len(bodies)])
            for index in range(args.single_lookups):
                call(client, "POST", "/v1/lookup", single, json=bodies[index % len(bodies)])

        print(f"quiet: {args.clients} clients for {args.quiet_seconds} s ...", file=sys.stderr)
        cpu_before = cpu_seconds(process.pid)
        quiet, quiet_wall = lookups(base_url, requester, bodies, args.clients, args.quiet_seconds)
        quiet_cpu = cpu_seconds(process.pid)

        print(f"load: + {args.idle_sockets} idle sockets + auditor for {args.seconds} s ...", file=sys.stderr)
        idle = IdleSockets(host, int(port), args.idle_sockets)
        idle.start()
        stop = threading.Event()
        audits, probes = Tally(), Tally()
        audit_client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {auditor}"}, timeout=120)
        probe_client = httpx.Client(base_url=base_url, timeout=10)
        background = [
            loop_until(stop, args.auditor_interval, lambda: call(audit_client, "GET", "/v1/ledger/verify", audits)),
            loop_until(stop, PROBE_INTERVAL_SECONDS, lambda: call(probe_client, "GET", "/healthz", probes)),
        ]
        load_cpu_before = cpu_seconds(process.pid)
        loaded, load_wall = lookups(base_url, requester, bodies, args.clients, args.seconds)
        load_cpu = cpu_seconds(process.pid)
        stop.set()
        for thread in background:
            thread.join()
        audit_client.close()
        probe_client.close()
        idle.stop()
        verified = httpx.get(
            base_url + "/v1/ledger/verify", headers={"Authorization": f"Bearer {auditor}"}, timeout=120
        ).json()

        def cpu_ms(before: float | None, after: float | None, count: int) -> float | None:
            return None if before is None or after is None or not count else round((after - before) * 1000 / count, 2)

        quiet_summary, load_summary = summary(quiet.latencies_ms), summary(loaded.latencies_ms)
        throughput = len(loaded.latencies_ms) / load_wall if load_wall else 0.0
        errors = len(quiet.errors) + len(loaded.errors) + len(audits.errors) + len(probes.errors) + len(single.errors)
        # Every line but the access log's (JSON objects): what the server said about trouble.
        with (workdir / "server.log").open(encoding="utf-8", errors="replace") as log:
            log_lines = sum(1 for line in log if not line.startswith("{"))
        result: dict[str, Any] = {
            "benchmark": "api_load",
            "commit": git_commit(),
            "people": people_in(data) if args.reuse_master else args.people,
            "clients": args.clients,
            "errors": errors,
            "error_kinds": sorted(set(single.errors + quiet.errors + loaded.errors + audits.errors + probes.errors)),
            "lookups_per_s": round(throughput, 1),
            "single": {"lookups": len(single.latencies_ms), **summary(single.latencies_ms)},
            "quiet": {
                "lookups": len(quiet.latencies_ms),
                "seconds": round(quiet_wall, 1),
                "lookups_per_s": round(len(quiet.latencies_ms) / quiet_wall, 1) if quiet_wall else None,
                **quiet_summary,
                "server_cpu_ms_per_lookup": cpu_ms(cpu_before, quiet_cpu, len(quiet.latencies_ms)),
            },
            "load": {
                "lookups": len(loaded.latencies_ms),
                "seconds": round(load_wall, 1),
                "lookups_per_s": round(throughput, 1),
                **load_summary,
                "server_cpu_ms_per_lookup": cpu_ms(load_cpu_before, load_cpu, len(loaded.latencies_ms)),
                "idle_sockets": args.idle_sockets,
                "idle_sockets_reopened": idle.reopened,
                "idle_connect_failures": idle.failed_connects,
                "idle_sockets_open_at_end": idle.open_at_end,
                "verifies": len(audits.latencies_ms),
                "verify": summary(audits.latencies_ms),
                "healthz": {"probes": len(probes.latencies_ms), **summary(probes.latencies_ms)},
            },
            "ledger_before": args.ledger_requests,
            "ledger_after": {"ok": verified.get("ok"), "entries": verified.get("entries")},
            "server_messages": log_lines,
            "server_peak_rss_mb": peak_rss_mb(process.pid),
            "checks": {
                "zero_errors": errors == 0,
                "p50_load_within_2x_quiet": load_summary["p50_ms"] <= 2 * quiet_summary["p50_ms"],
                "throughput_at_least_500": throughput >= 500,
            },
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
