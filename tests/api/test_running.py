"""Many users, one workspace (issue 13, finding 6): the command line works while `taxmatch serve` runs.

A real server subprocess holds the workspace database; real `taxmatch` subprocesses look up,
verify, export and report through it (api/running.py). Before, each failed with "database in use".
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from taxmatch.api.keys import KeyStore, Role
from taxmatch.ledger.model import command_line_actor
from taxmatch.settings import Workspace

TAXMATCH = str(Path(sys.executable).with_name("taxmatch"))


@dataclass
class Served:
    home: Path
    data: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    base_url: str
    requester: str
    auditor: str

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TAXMATCH, "--home", str(self.home), *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from taxmatch.synth import generate

    root = tmp_path_factory.mktemp("running")
    home, data = root / "home", root / "data"
    env = {**os.environ, "TAXMATCH_KEY_FILE": str(root / "keys" / "db.key"), "XDG_CONFIG_HOME": str(root / "cfg")}
    env.pop("TAXMATCH_HOME", None)
    env["TAXMATCH_API_RATE_LIMIT_PER_MINUTE"] = "100000"
    env["TAXMATCH_API_VERIFY_MIN_INTERVAL_SECONDS"] = "0"
    generate(data, people=200, requests=20, seed=5, as_of=datetime.date.today())
    loaded = subprocess.run(
        [TAXMATCH, "--home", str(home), "master", "load", str(data / "master.csv")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    store = KeyStore.for_workspace(Workspace(home))
    _, requester = store.create("ICE", Role.REQUESTER)
    _, auditor = store.create("ICE", Role.AUDITOR)
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "taxmatch.api.server", "--home", str(home), "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on http://" in line, (root / "server.log").read_text()
    base_url = line.split("listening on ")[1].split()[0]
    deadline = time.monotonic() + 60
    while httpx.get(base_url + "/healthz", timeout=5).json() != {"status": "ok"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield Served(home, data, env, process, base_url, requester, auditor)
    process.terminate()
    process.wait(30)
    process.stdout.close()
    log.close()


def requests_of(served: Served) -> list[dict[str, str]]:
    with (served.data / "requests.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_server_announces_itself_privately_and_the_channel_is_closed_to_others(served: Served) -> None:
    announced = served.home / "server.json"
    assert oct(announced.stat().st_mode & 0o777) == "0o600"
    document = httpx.get(served.base_url + "/openapi.json", timeout=10).json()
    assert not any(path.startswith("/v1/operator") for path in document["paths"])
    body = {"request": requests_of(served)[0], "as_of": datetime.date.today().isoformat(), "agency": "ICE"}
    for headers in ({}, {"Authorization": f"Bearer {served.requester}"}, {"Authorization": "Bearer guessed"}):
        response = httpx.post(served.base_url + "/v1/operator/lookup", json=body, headers=headers, timeout=10)
        assert response.status_code == 404


def test_cli_lookup_while_serving_is_decided_and_accounted_by_the_server(served: Served) -> None:
    request = requests_of(served)[0]
    via_api = httpx.post(
        served.base_url + "/v1/lookup",
        json=request,
        headers={"Authorization": f"Bearer {served.requester}"},
        timeout=30,
    ).json()
    done = served.cli("lookup", "--json", "-", "--agency", "ICE", stdin=json.dumps(request))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["outcome"], answer["reason_codes"], answer["disclosure"]) == (
        via_api["outcome"],
        via_api["reason_codes"],
        via_api["disclosure"],
    )
    assert "in use" not in done.stderr


def test_ledger_verify_export_and_report_while_serving(served: Served, tmp_path: Path) -> None:
    for request in requests_of(served)[:5]:
        done = served.cli("lookup", "--json", "-", "--agency", "CBP", stdin=json.dumps(request))
        assert done.returncode == 0, done.stderr
    verified = served.cli("ledger", "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    result = json.loads(verified.stdout)
    assert result["ok"] is True
    api = httpx.get(
        served.base_url + "/v1/ledger/verify", headers={"Authorization": f"Bearer {served.auditor}"}, timeout=30
    ).json()
    assert (api["entries"], api["head"]) == (result["entries"], result["head"])

    out = tmp_path / "ledger.jsonl"
    exported = served.cli("ledger", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    entries = [line for line in lines if line.get("type") == "entry"]
    assert len(entries) >= result["entries"]
    assert (
        sum(1 for entry in entries if entry.get("agency") == "CBP" and entry.get("actor") == command_line_actor()) == 5
    )
    from_file = served.cli("ledger", "verify", "--file", str(out))
    assert from_file.returncode == 0, from_file.stderr

    today = datetime.date.today().isoformat()
    reported = served.cli("ledger", "report", "--from", today, "--to", today, "--out", str(tmp_path / "report"))
    assert reported.returncode == 0, reported.stderr
    assert (tmp_path / "report" / "counts.csv").is_file()
    # Snapshots are read and removed, never left in the workspace.
    assert not list((served.home / ".snapshots").glob("*.duckdb"))


def test_cli_commands_beside_a_stream_of_api_lookups(served: Served) -> None:
    """Verify and lookups from the command line while API clients keep looking up: no error anywhere."""
    requests = requests_of(served)
    stop = threading.Event()
    failures: list[str] = []

    def client() -> None:
        headers = {"Authorization": f"Bearer {served.requester}"}
        with httpx.Client(base_url=served.base_url, headers=headers, timeout=30) as http:
            index = 0
            while not stop.is_set():
                response = http.post("/v1/lookup", json=requests[index % len(requests)])
                if response.status_code != 200:
                    failures.append(f"HTTP {response.status_code}")
                index += 1

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            assert served.cli("ledger", "verify").returncode == 0
            assert served.cli("lookup", "--json", "-", "--agency", "ICE", stdin=json.dumps(requests[1])).returncode == 0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert served.cli("ledger", "verify").returncode == 0


def exported_entries(served: Served, home: Path, out: Path, batch_id: str) -> list[dict[str, object]]:
    """The ledger entries of ``batch_id`` in an export of ``home``, without what differs between ledgers."""
    done = subprocess.run(
        [TAXMATCH, "--home", str(home), "ledger", "export", "--out", str(out)],
        env=served.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    entries = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    placed = ("seq", "entry_hash", "prev_hash", "recorded_at")
    return [
        {key: value for key, value in entry.items() if key not in placed}
        for entry in entries
        if entry.get("type") == "entry" and entry.get("batch_id") == batch_id
    ]


def test_batch_run_while_serving_gives_what_a_run_without_a_server_gives(served: Served, tmp_path: Path) -> None:
    """`batch run` goes through the running server (before: "database in use") and yields the same
    outcome files, manifest and ledger entries as the same batch in a workspace without a server."""
    as_of = datetime.date.today().isoformat()
    arguments = ("batch", "run", str(served.data / "requests.csv"), "--agency", "ICE", "--as-of", as_of)
    via_server = served.cli(*arguments, "--out", str(tmp_path / "served"))
    assert via_server.returncode == 0, via_server.stderr
    assert "in use" not in via_server.stderr

    alone = tmp_path / "alone"
    for command in (("master", "load", str(served.data / "master.csv")), (*arguments, "--out", str(tmp_path / "out"))):
        done = subprocess.run([TAXMATCH, "--home", str(alone), *command], env=served.env, capture_output=True,
                              text=True, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr

    served_manifest = json.loads((tmp_path / "served" / "manifest.json").read_text(encoding="utf-8"))
    alone_manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        assert (tmp_path / "served" / name).read_bytes() == (tmp_path / "out" / name).read_bytes(), name
    where_and_when = ("ledger_head", "written_at")  # the two ledgers differ in what came before the batch
    assert {key: value for key, value in served_manifest.items() if key not in where_and_when} == {
        key: value for key, value in alone_manifest.items() if key not in where_and_when
    }
    batch_id = str(served_manifest["batch_id"])
    assert served_manifest["counts"]["total"] == len(requests_of(served))
    served_entries = exported_entries(served, served.home, tmp_path / "served.jsonl", batch_id)
    assert len(served_entries) == len(requests_of(served))
    assert served_entries == exported_entries(served, alone, tmp_path / "alone.jsonl", batch_id)
    # The manifest's ledger head is an entry of the served ledger, and that ledger is intact.
    assert served.cli("ledger", "verify", "--expect-head", served_manifest["ledger_head"]["hash"]).returncode == 0

    # The same batch again through the server is refused as it is without one; --rerun is a new batch.
    again = served.cli(*arguments, "--out", str(tmp_path / "again"))
    assert again.returncode != 0
    assert "already run" in again.stderr and "Traceback" not in again.stderr
    rerun = served.cli(*arguments, "--out", str(tmp_path / "rerun"), "--rerun")
    assert rerun.returncode == 0, rerun.stderr
    rerun_manifest = json.loads((tmp_path / "rerun" / "manifest.json").read_text(encoding="utf-8"))
    assert (rerun_manifest["batch_id"], rerun_manifest["repeats"]) == (f"{batch_id}-r1", batch_id)

    # `batch list` and `batch show` read a copy the server takes (before: "database in use"), and
    # say what they say in the workspace without a server.
    for command in (("batch", "list", "--json"), ("batch", "show", batch_id, "--json")):
        listed = served.cli(*command)
        assert listed.returncode == 0, listed.stderr
        alone_listed = subprocess.run([TAXMATCH, "--home", str(alone), *command], env=served.env,
                                      capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert alone_listed.returncode == 0, alone_listed.stderr
        served_answer, alone_answer = json.loads(listed.stdout), json.loads(alone_listed.stdout)
        if command[1] == "list":
            (served_batch,) = [batch for batch in served_answer["batches"] if batch["batch_id"] == batch_id]
            (alone_batch,) = [batch for batch in alone_answer["batches"] if batch["batch_id"] == batch_id]
            assert served_batch["counts"] == alone_batch["counts"]
            assert sum(served_batch["counts"].values()) == len(requests_of(served))
        else:
            for key in ("counts", "reason_counts", "status", "processed", "total"):
                assert served_answer[key] == alone_answer[key], key


def test_a_cli_lookup_through_the_server_is_accounted_as_an_api_lookup_is(served: Served, tmp_path: Path) -> None:
    """Both without a request id: each gets an id of its own, and the actor names key or login."""
    request = {key: value for key, value in requests_of(served)[2].items() if key != "request_id"}
    via_api = httpx.post(
        served.base_url + "/v1/lookup",
        json=request,
        headers={"Authorization": f"Bearer {served.requester}"},
        timeout=30,
    ).json()
    done = served.cli("lookup", "--json", "-", "--agency", "ICE", "--explain", stdin=json.dumps(request))
    assert done.returncode == 0, done.stderr
    via_cli = json.loads(done.stdout)
    assert "explanation" in via_cli  # --explain is served through the server too
    ids = {via_api["request_id"], via_cli["request_id"]}
    assert len(ids) == 2 and all(request_id.startswith("lookup-") for request_id in ids)
    out = tmp_path / "ledger.jsonl"
    assert served.cli("ledger", "export", "--out", str(out)).returncode == 0
    entries = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    actors = {entry["request_id"]: entry["actor"] for entry in entries if entry.get("request_id") in ids}
    key_id = served.requester.split("_")[1]
    assert actors == {via_api["request_id"]: f"api:{key_id}", via_cli["request_id"]: command_line_actor()}
    assert {entry["batch_id"] for entry in entries if entry.get("request_id") in ids} == {"lookup"}


def test_server_file_is_removed_at_shutdown(tmp_path: Path) -> None:
    env = {**os.environ, "TAXMATCH_KEY_FILE": str(tmp_path / "keys" / "db.key"), "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("TAXMATCH_HOME", None)
    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-m", "taxmatch.api.server", "--home", str(home), "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on" in line
    base_url = line.split("listening on ")[1].split()[0]
    deadline = time.monotonic() + 30
    while httpx.get(base_url + "/healthz", timeout=5).json() != {"status": "ok"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (home / "server.json").exists()
    process.terminate()
    process.wait(30)
    process.stdout.close()
    assert not (home / "server.json").exists()


def test_a_stale_server_file_does_not_stop_the_cli(tmp_path: Path) -> None:
    """A server killed with -9 leaves server.json; a lookup then decides locally, as without a server."""
    from taxmatch.synth import generate

    env = {**os.environ, "TAXMATCH_KEY_FILE": str(tmp_path / "keys" / "db.key"), "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("TAXMATCH_HOME", None)
    home, data = tmp_path / "home", tmp_path / "data"
    generate(data, people=50, requests=3, seed=3, as_of=datetime.date.today())
    command = [TAXMATCH, "--home", str(home)]
    loaded = subprocess.run([*command, "master", "load", str(data / "master.csv")], env=env, capture_output=True,
                            text=True, timeout=300, check=False)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    # This process is alive, but nothing listens on the port it names.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    (home / "server.json").write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "pid": os.getpid(), "token": "x"}))
    with (data / "requests.csv").open(encoding="utf-8", newline="") as handle:
        request = next(csv.DictReader(handle))
    done = subprocess.run([*command, "lookup", "--json", "-", "--agency", "ICE"], input=json.dumps(request), env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] in ("DISCLOSED", "REJECTED", "NOT_MATCHED")
