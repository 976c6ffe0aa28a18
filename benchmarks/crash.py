"""Crash safety: `batch run` and `master load` killed with SIGKILL at many points. Prints one JSON line.

    python benchmarks/crash.py [--people 3000] [--requests 3000] [--batch-kills 14] [--master-kills 8]
                               [--seed 7] [--keep]

A throwaway workspace gets a synthetic master (and a second, larger one from another seed to
swap in). Then, one at a time:

* `taxmatch batch run` of the requests, for an agency of its own, killed (the whole process
  group: forked helpers too) after a delay drawn from its own slice of a clean run's duration,
  or as soon as the run's staged manifest appears (just before the ledger commit); a run that
  finishes before its kill is checked and tried again with half the delay (up to 4 times);
* `taxmatch master load` of the other master, killed the same way; then a probe batch runs.

After every kill the workspace is checked, the same command is run again to completion, and the
workspace checked again:

* orphan_outcome_rows: rows of outcome files in place whose outcome the ledger does not hold
  (the most seen at one check);
* doubled_entries: entries of a (batch, request id) beyond the times that id is in the input;
* mismatched_model_batches: batches whose manifest names a model that was not fitted on the
  master they were scored against; mismatched_model_states: the current model not fitted on the
  master in place;
* reruns_completed / reruns: the killed commands run again whose job is then done: a master
  load that exits 0; a batch whose manifest is in place with one entry per record, after a re-run
  that exits 0 or that is refused because the killed run had completed before it died (counted
  in reruns_refused_as_already_complete); probe_batches_completed / probe_batches likewise;
* verify_failures: `taxmatch ledger verify` not exiting 0;
* staging_dirs_left_after_reruns: staging directories (`.*.staging`, complete outcome files of
  runs killed before their commit: personal data) still on disk after a re-run completed (the
  most seen at one check); the next `batch run` or `master load` deletes them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import AS_OF, DEFAULT_SEED, emit, ensure_data, git_commit, log, positive_int, run_step, workspace
from taxmatch.database import open_database
from taxmatch.settings import Workspace as TaxmatchWorkspace

OUTCOMES = {"disclosed.csv": "DISCLOSED", "rejected.csv": "REJECTED", "unmatched.csv": "NOT_MATCHED"}
KILL_POLL_SECONDS = 0.005
MAX_ATTEMPTS = 4


def killed_after(argv: list[str], env: dict[str, str], delay: float, trigger: tuple[Path, str] | None = None) -> bool:
    """Run `argv`, SIGKILL its process group after `delay` s (or once a file matching the glob
    pattern `trigger[1]` appears under `trigger[0]`). True if it was killed, False if it finished first."""
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + delay
    while process.poll() is None:
        due = any(trigger[0].glob(trigger[1])) if trigger is not None else time.monotonic() >= deadline
        if due:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return True
        time.sleep(KILL_POLL_SECONDS)
    return False


def completes(argv: list[str], env: dict[str, str]) -> bool:
    finished = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        log(f"exit {finished.returncode}: {' '.join(argv)}\n{finished.stderr[-2000:]}")
    return finished.returncode == 0


def refused_as_complete(argv: list[str], env: dict[str, str]) -> bool:
    """Whether `argv` (a batch run) is refused because its batch already completed."""
    refused = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return refused.returncode == 2 and "has already run" in refused.stderr


class Checker:
    def __init__(self, home: Path, requests: Path) -> None:
        self.home = home
        with requests.open(encoding="utf-8", newline="") as handle:
            self.input_ids = Counter(row["request_id"] for row in csv.DictReader(handle))
        self.out_dirs: dict[str, Path] = {}  # agency -> its batch output directory
        self.master_of_batch: dict[str, tuple[int, int]] = {}  # agency -> master (returns, tins) it ran on
        self.orphan_outcome_rows = 0
        self.doubled_entries = 0
        self.mismatched_model_states = 0

    def _read(self) -> tuple[list[tuple[str, str, str, str]], dict[str, tuple[int, int]], str, tuple[int, int]]:
        connection = open_database(TaxmatchWorkspace(self.home), read_only=True).connection
        try:
            entries = connection.execute("SELECT agency, batch_id, request_id, outcome FROM ledger_entries").fetchall()
            models = {
                str(version): (int(returns), int(taxpayers))
                for version, returns, taxpayers in connection.execute(
                    "SELECT version, returns, taxpayers FROM model_store"
                ).fetchall()
            }
            current = connection.execute(
                "SELECT version FROM model_store ORDER BY fitted_at DESC, version LIMIT 1"
            ).fetchone()
            master = connection.execute("SELECT count(*), count(DISTINCT tin) FROM master_returns").fetchone()
        finally:
            connection.close()
        assert current is not None and master is not None
        rows = [(str(a), str(b), str(r), str(o)) for a, b, r, o in entries]
        return rows, models, str(current[0]), (int(master[0]), int(master[1]))

    def staging_dirs(self, outs: Path) -> int:
        return sum(1 for place in (outs, self.home / "batches") for _ in place.glob(".*.staging"))

    def master(self) -> tuple[int, int]:
        return self._read()[3]

    def check(self) -> None:
        entries, models, current, master = self._read()
        if models[current] != master:
            self.mismatched_model_states += 1
        by_agency: dict[str, Counter[tuple[str, str]]] = {}
        per_request: Counter[tuple[str, str]] = Counter()
        for agency, batch_id, request_id, outcome in entries:
            by_agency.setdefault(agency, Counter())[(request_id, outcome)] += 1
            per_request[(batch_id, request_id)] += 1
        self.doubled_entries = sum(
            max(0, count - self.input_ids[request_id]) for (_, request_id), count in per_request.items()
        )
        orphans = 0
        for agency, out in self.out_dirs.items():
            recorded = by_agency.get(agency, Counter())
            for name, outcome in OUTCOMES.items():
                if (out / name).is_file():
                    with (out / name).open(encoding="utf-8", newline="") as handle:
                        written = Counter((row["request_id"], outcome) for row in csv.DictReader(handle))
                    orphans += sum((written - recorded).values())
        self.orphan_outcome_rows = max(self.orphan_outcome_rows, orphans)

    def batch_complete(self, agency: str) -> bool:
        """The agency's batch has its manifest in place and one entry per input record."""
        manifest_path = self.out_dirs[agency] / "manifest.json"
        if not manifest_path.is_file():
            return False
        batch_id = json.loads(manifest_path.read_text(encoding="utf-8"))["batch_id"]
        entries, _, _, _ = self._read()
        return sum(1 for _, batch, _, _ in entries if batch == batch_id) == sum(self.input_ids.values())

    def mismatched_model_batches(self) -> int:
        _, models, _, _ = self._read()
        mismatched = 0
        for agency, out in self.out_dirs.items():
            manifest_path = out / "manifest.json"
            if manifest_path.is_file():
                version = json.loads(manifest_path.read_text(encoding="utf-8"))["model_version"]
                mismatched += models.get(version) != self.master_of_batch[agency]
        return mismatched


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with workspace(args.keep, "taxmatch-crash-") as space:
        os.environ["TAXMATCH_KEY_FILE"] = space.env["TAXMATCH_KEY_FILE"]  # the checks open the database too
        data, _, _ = ensure_data(space, None, args.people, args.requests, args.seed)
        other, _, _ = ensure_data(space, space.root / "other", args.people + args.people // 10, 10, args.seed + 1)
        masters = [data / "master.csv", other / "master.csv"]
        requests = data / "requests.csv"
        load = run_step("master load", space.taxmatch("master", "load", str(masters[0])), space.env)
        checker = Checker(space.home, requests)
        outs = space.root / "outs"

        def batch(agency: str) -> list[str]:
            checker.out_dirs[agency] = outs / agency
            checker.master_of_batch[agency] = checker.master()
            return space.taxmatch(
                "batch", "run", str(requests), "--agency", agency, "--as-of", AS_OF, "--out", str(outs / agency)
            )

        clean = run_step("batch run", batch("CLEAN"), space.env)
        kills = killed = reruns = reruns_completed = already_complete = probes = probes_completed = 0
        verify_failures = finished_first = staging_left = 0
        loaded = next_master = 0  # index of the master in place, of the one being loaded

        def verify() -> None:
            nonlocal verify_failures
            verify_failures += not completes(space.taxmatch("ledger", "verify"), space.env)

        plan = [("batch", index) for index in range(args.batch_kills)] + [
            ("master", index) for index in range(args.master_kills)
        ]
        rng.shuffle(plan)
        for kind, index in plan:
            kills += 1
            # A command that finishes before its kill (the machine's speed varies) is not a kill
            # point: it runs again with half the delay, up to MAX_ATTEMPTS times.
            for attempt in range(MAX_ATTEMPTS):
                shorter = 0.5**attempt
                if kind == "batch":
                    agency = f"CRASH-{index:02d}" + (f"-{attempt}" if attempt else "")
                    argv = batch(agency)
                    if index < 2:  # the narrowest window: staged, about to commit
                        trigger = (outs, f".{agency}.*.staging/manifest.json")
                        was_killed = killed_after(argv, space.env, 0.0, trigger)
                    else:
                        # Each kill in its own slice of a clean run: spread over the whole run.
                        slices = args.batch_kills - 2
                        delay = (index - 2 + rng.random()) / slices * clean.seconds * shorter
                        was_killed = killed_after(argv, space.env, delay)
                else:
                    next_master = 1 - loaded
                    argv = space.taxmatch("master", "load", str(masters[next_master]))
                    delay = (index + rng.random()) / args.master_kills * load.seconds * shorter
                    was_killed = killed_after(argv, space.env, delay)
                if was_killed:
                    break
                finished_first += 1
                checker.check()
                if kind == "master":
                    loaded = next_master
            killed += was_killed
            checker.check()
            verify()
            if kind == "master":
                # A batch straight after the killed load is scored with whatever master and model serve.
                probes += 1
                probes_completed += completes(batch(f"PROBE-{index:02d}"), space.env)
                checker.check()
            reruns += 1
            if kind == "master":
                if completes(argv, space.env):
                    reruns_completed += 1
                    loaded = next_master
            elif completes(argv, space.env):
                reruns_completed += checker.batch_complete(agency)
            elif refused_as_complete(argv, space.env) and checker.batch_complete(agency):
                # Killed after it had put everything in place (while exiting): the re-run rightly refuses it.
                reruns_completed += 1
                already_complete += 1
            checker.check()
            staging_left = max(staging_left, checker.staging_dirs(outs))
            verify()
            log(f"kill {kills}/{len(plan)}: {kind} {'killed' if was_killed else 'finished first'}")
        result: dict[str, Any] = {
            "benchmark": "crash",
            "people": args.people,
            "requests": args.requests,
            "kills": kills,
            "batch_kills": args.batch_kills,
            "master_kills": args.master_kills,
            "killed_before_done": killed,
            "finished_before_the_kill_and_retried": finished_first,
            "orphan_outcome_rows": checker.orphan_outcome_rows,
            "doubled_entries": checker.doubled_entries,
            "mismatched_model_batches": checker.mismatched_model_batches(),
            "mismatched_model_states": checker.mismatched_model_states,
            "reruns": reruns,
            "reruns_completed": reruns_completed,
            "reruns_refused_as_already_complete": already_complete,
            "probe_batches": probes,
            "probe_batches_completed": probes_completed,
            "verify_failures": verify_failures,
            "staging_dirs_left_after_reruns": staging_left,
            "clean_batch_seconds": round(clean.seconds, 2),
            "clean_load_seconds": round(load.seconds, 2),
            "seconds": round(time.perf_counter() - started, 1),
            "commit": git_commit(),
        }
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=positive_int, default=3_000)
    parser.add_argument("--requests", type=positive_int, default=3_000)
    parser.add_argument("--batch-kills", type=positive_int, default=14)
    parser.add_argument("--master-kills", type=positive_int, default=8)
    parser.add_argument("--seed", type=positive_int, default=DEFAULT_SEED)
    parser.add_argument("--keep", action="store_true", help="keep the workspace")
    emit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
