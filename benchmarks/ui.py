"""Dashboard server time (DESIGN.md section 7: page p50 <= 150 ms, p99 <= 500 ms at 1M people, a 100k batch).

Builds a synthetic master of N people and a batch of M requests (or takes --data DIR), loads the
master and runs the batch with the CLI, starts `python -m taxmatch.api.server` on 127.0.0.1,
signs in through the dashboard's form, then times, over one keep-alive connection:

* the batch page (`/ui/batches/{id}`: counts by outcome and reason code, charts, the first page
  of requests), its first view (which reads the outcome files for the charts) apart;
* the request table: `/ui/batches/{id}?outcome=...&page=K` for pages spread over the batch;
* the batches list (`/ui/batches`);
* request pages (`/ui/batches/{id}/requests/{request_id}`, with the explanation), of each outcome.

Each time is the round trip on localhost, which is the server's time plus well under a
millisecond. Prints ONE JSON line. Example (quick run):

    python benchmarks/ui.py --people 20000 --requests 5000 --samples 50
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from _common import git_commit, server_env, stop_server
from lookup_latency import TAXMATCH, cpu_seconds, people_in, start_server, summary
from taxmatch.api.keys import KeyStore, Role
from taxmatch.settings import Workspace

OUTCOMES = ("DISCLOSED", "REJECTED", "NOT_MATCHED")
REQUESTS_PER_PAGE = 50  # taxmatch.api.web.pages.REQUESTS_PER_PAGE


def sign_in(client: httpx.Client, key: str) -> None:
    form = client.get("/ui/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if token is None:
        raise SystemExit("no sign-in form")
    answer = client.post("/ui/login", data={"api_key": key, "csrf_token": token.group(1)})
    if answer.status_code != 303:
        raise SystemExit(f"sign-in failed: {answer.status_code}")


def timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"GET {path}: {answer.status_code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--data", type=Path, help="directory with master.csv and requests.csv (skips synth)")
    parser.add_argument("--samples", type=int, default=200, help="timed requests per page kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (default: a temporary directory)")
    parser.add_argument(
        "--reuse", action="store_true", help="--workdir holds a loaded workspace with a batch: only time the pages"
    )
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="taxmatch-ui-"))
    workdir.mkdir(parents=True, exist_ok=True)
    home, data = workdir / "home", args.data or workdir / "data"
    env = server_env(workdir)
    timings: dict[str, float] = {}
    process: subprocess.Popen[str] | None = None
    try:
        if args.reuse and args.workdir is None:
            raise SystemExit("--reuse needs --workdir")
        if args.data is None and not args.reuse:
            from taxmatch.synth import generate

            started = time.perf_counter()
            generate(data, people=args.people, requests=args.requests, seed=args.seed, as_of=datetime.date.today())
            timings["synth_seconds"] = round(time.perf_counter() - started, 1)
        steps = (
            ("master_load_seconds", ["master", "load", str(data / "master.csv")]),
            ("batch_run_seconds", ["batch", "run", str(data / "requests.csv"), "--agency", "BENCH"]),
        )
        for name, command in () if args.reuse else steps:
            started = time.perf_counter()
            subprocess.run([TAXMATCH, "--home", str(home), *command], env=env, check=True, capture_output=True)
            timings[name] = round(time.perf_counter() - started, 1)
        listed = subprocess.run([TAXMATCH, "--home", str(home), "batch", "list", "--json"], env=env, check=True,
                                capture_output=True, text=True)  # fmt: skip
        batch = json.loads(listed.stdout)["batches"][0]
        _, key = KeyStore.for_workspace(Workspace(home)).create("BENCH", Role.REQUESTER)
        process, base_url = start_server(home, env, workdir / "server.log")
        random.seed(args.seed)
        results: dict[str, dict[str, float]] = {}
        with httpx.Client(base_url=base_url, timeout=60, follow_redirects=False) as client:
            sign_in(client, key)
            batch_page = f"/ui/batches/{batch['batch_id']}"
            # The first view reads the outcome files for the charts (then kept while the files are unchanged).
            results["batch_page_first_ms"] = {"ms": round(timed(client, batch_page), 2)}
            for _ in range(5):
                timed(client, batch_page)
            cpu_before = cpu_seconds(process.pid)
            samples = [timed(client, batch_page) for _ in range(args.samples)]
            cpu_after = cpu_seconds(process.pid)
            results["batch_page"] = summary(samples)
            if cpu_before is not None and cpu_after is not None:
                results["batch_page"]["server_cpu_ms"] = round((cpu_after - cpu_before) * 1000 / args.samples, 2)
            counts = {"DISCLOSED": batch["counts"]["disclosed"], "REJECTED": batch["counts"]["rejected"],
                      "NOT_MATCHED": batch["counts"]["unmatched"]}  # fmt: skip
            table: list[float] = []
            for _ in range(args.samples):
                outcome = random.choice([None, *OUTCOMES])
                rows = batch["processed"] if outcome is None else counts[outcome]
                page = random.randint(1, max(1, -(-rows // REQUESTS_PER_PAGE)))
                table.append(timed(client, f"{batch_page}?outcome={outcome or ''}&page={page}"))
            results["request_table"] = summary(table)
            # A request's page: its outcome row from the outcome files and its explanation from what the batch kept.
            request_ids: list[str] = []
            for outcome in OUTCOMES:
                listing = client.get(f"{batch_page}?outcome={outcome}&page=1").text
                request_ids += re.findall(r'/requests/([^"]+)"', listing)[:20]
            results["request_page"] = summary(
                [timed(client, f"{batch_page}/requests/{random.choice(request_ids)}") for _ in range(args.samples)]
            )
            results["batches_list"] = summary([timed(client, "/ui/batches") for _ in range(args.samples)])
        target = {"p50_ms": 150.0, "p99_ms": 500.0}
        met = all(
            results[kind]["p50_ms"] <= target["p50_ms"] and results[kind]["p99_ms"] <= target["p99_ms"]
            for kind in ("batch_page", "request_table")
        )
        print(json.dumps({
            "benchmark": "ui", "commit": git_commit(), "people": people_in(data) or args.people,
            "requests": batch["processed"], "samples": args.samples, **timings, **results, "target": target,
            "target_met": met,
        }))  # fmt: skip
    finally:
        stop_server(process)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
