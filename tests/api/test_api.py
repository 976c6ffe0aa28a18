"""The HTTP API over real HTTP: uvicorn in a subprocess on 127.0.0.1, an ephemeral port, a tmp workspace.

The workspace is prepared with the real CLI *before* the server starts (DuckDB has a single
writer): a small synthetic master is loaded and `taxmatch batch run` gives the expected
outcome of every request, against which lookups and API batches are compared.
"""

from __future__ import annotations

import csv
import datetime
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from taxmatch.api.app import LookupResponse
from taxmatch.api.keys import KeyStore, Role
from taxmatch.api.limits import ApiLimits

PEOPLE = 300
REQUESTS = 40
TAXMATCH = str(Path(sys.executable).with_name("taxmatch"))
OUTPUTS = ("disclosed.csv", "rejected.csv", "unmatched.csv")
INVALID_REQUEST = {"request_id": "bad-1", "first_name": "UNKNOWN", "last_name": "DOE"}  # rejected without scoring


def run(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{args[:4]} failed: {done.stderr[-2000:]}"
    return done.stdout


@dataclass
class Server:
    """One `python -m taxmatch.api.server` process; restartable on the same workspace."""

    home: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[str] | None = None
    base_url: str = ""
    logs: list[Path] = field(default_factory=list)

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        env = {**self.env, **(extra_env or {})}
        log = self.log_path.with_suffix(f".{len(self.logs)}.log")
        self.logs.append(log)
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "taxmatch.api.server", "--home", str(self.home), "--port", "0"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        assert self.process.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        assert line and "listening on http://" in line[0], f"server did not start: {log.read_text()[-2000:]}"
        self.base_url = line[0].split("listening on ")[1].split()[0]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/healthz", timeout=2).json() == {"status": "ok"}:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("server never became healthy")

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(30)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None


@dataclass
class World:
    home: Path
    data: Path
    expected_dir: Path
    server: Server
    keys: dict[str, str]
    env: dict[str, str]
    client: httpx.Client

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {self.keys.get(key, key)}"
        return self.client.request(method, self.server.base_url + path, headers=headers, **kwargs)

    def wait_done(self, batch_id: str, key: str = "ice_requester", timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status: dict[str, Any] = self.call("GET", f"/v1/batches/{batch_id}", key).json()
            if status["status"] in ("done", "failed"):
                return status
            time.sleep(0.1)
        raise AssertionError(f"batch {batch_id} not done in {timeout}s")


def comparable(content: bytes) -> list[dict[str, str]]:
    """An outcome file's rows."""
    return list(csv.DictReader(content.decode("utf-8").splitlines()))


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def expected_outcomes(out: Path) -> dict[str, tuple[str, str, dict[str, str]]]:
    """request_id -> (outcome, reason codes, disclosed row); the first outcome of a repeated id."""
    found: dict[str, tuple[str, str, dict[str, str]]] = {}
    for name, outcome in zip(OUTPUTS, ("DISCLOSED", "REJECTED", "NOT_MATCHED"), strict=True):
        for row in read_rows(out / name):
            if row.get("reason_codes") != "DUPLICATE_REQUEST_ID":
                found.setdefault(row["request_id"], (outcome, row.get("reason_codes", ""), row))
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from taxmatch.synth import generate

    root = tmp_path_factory.mktemp("api")
    home, data, expected = root / "home", root / "data", root / "expected"
    env = {**os.environ, "TAXMATCH_KEY_FILE": str(root / "keys" / "db.key"), "XDG_CONFIG_HOME": str(root / "cfg")}
    env.pop("TAXMATCH_HOME", None)
    # The tests poll status often; the rate limit itself is tested in-process below.
    env["TAXMATCH_API_RATE_LIMIT_PER_MINUTE"] = "100000"
    # The tests verify right after their lookups: no reuse of an earlier verification's result.
    env["TAXMATCH_API_VERIFY_MIN_INTERVAL_SECONDS"] = "0"
    generate(data, people=PEOPLE, requests=REQUESTS, seed=11, as_of=datetime.date.today())
    with (data / "requests.csv").open("a", encoding="utf-8", newline="") as handle:
        handle.write("RQ-X1,Ana,,Lopez,,,,Don't Care,,,,12345,A123456789,2020-01-02,8 USC 1326,2020\n")
        handle.write("RQ-X2,Ana,,Lopez,,,,12 Main St,,Austin,TX,78701,A123456789,2020-01-02,8 USC 1182,2020\n")
    run(TAXMATCH, "--home", str(home), "master", "load", str(data / "master.csv"), env=env)
    run(TAXMATCH, "--home", str(home), "batch", "run", str(data / "requests.csv"), "--agency", "ICE",
        "--out", str(expected), env=env)  # fmt: skip
    keys: dict[str, str] = {}
    for name, agency, role in (
        ("ice_requester", "ICE", "requester"),
        ("ice_auditor", "ICE", "auditor"),
        ("ice_admin", "ICE", "admin"),
        ("cbp_requester", "CBP", "requester"),
        ("cbp_admin", "CBP", "admin"),
    ):
        command = (sys.executable, "-m", "taxmatch.api.cli", "--home", str(home), "keys", "create", "--agency")
        keys[name] = run(*command, agency, "--role", role, env=env).strip()
    server = Server(home, env, root / "server")
    server.start()
    with httpx.Client(timeout=60) as client:
        yield World(home, data, expected, server, keys, env, client)
    server.stop()


def submit(world: World, key: str, body: bytes, content_type: str = "text/csv", rerun: bool = False) -> httpx.Response:
    path = "/v1/batches?rerun=true" if rerun else "/v1/batches"
    return world.call("POST", path, key, content=body, headers={"Content-Type": content_type})


_TINY_BATCHES = itertools.count()


def tiny_csv(world: World) -> bytes:
    """A two-request batch, another one at every call: the same body twice is one batch (a repeat is 409)."""
    lines = (world.data / "requests.csv").read_bytes().splitlines(keepends=True)
    start = 1 + 2 * next(_TINY_BATCHES) % (len(lines) - 2)
    return lines[0] + b"".join(lines[start : start + 2])


def test_keys_cli_stores_only_hashes_and_lists(world: World) -> None:
    text = (world.home / "api-keys.json").read_text()
    for key in world.keys.values():
        assert key.startswith("tm_")
        assert key.split("_", 2)[2] not in text
    assert oct((world.home / "api-keys.json").stat().st_mode & 0o777) == "0o600"
    listing = run(sys.executable, "-m", "taxmatch.api.cli", "--home", str(world.home), "keys", "list", env=world.env)
    assert all(key.split("_")[1] in listing for key in world.keys.values())
    assert "CBP" in listing and "auditor" in listing


def test_healthz_needs_no_key(world: World) -> None:
    assert world.call("GET", "/healthz").status_code == 200
    assert world.call("GET", "/healthz", "not-a-key").status_code == 200


def test_auth_and_role_matrix(world: World) -> None:
    accepted = submit(world, "ice_requester", tiny_csv(world))
    assert accepted.status_code == 202, accepted.text
    batch_id = accepted.json()["batch_id"]
    assert accepted.json()["status_url"] == f"/v1/batches/{batch_id}"
    world.wait_done(batch_id)
    wrong_secret = world.keys["ice_requester"][:-4] + "AAAA"
    routes: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/v1/lookup", {"json": INVALID_REQUEST}, "requester"),
        # A batch asked to run as a re-run: accepted (a plain repeat of one body is 409, tested below).
        (
            "POST",
            "/v1/batches?rerun=true",
            {"content": tiny_csv(world), "headers": {"Content-Type": "text/csv"}},
            "requester",
        ),
        ("GET", f"/v1/batches/{batch_id}", {}, "requester"),
        *(("GET", f"/v1/batches/{batch_id}/{name}", {}, "requester") for name in OUTPUTS),
        ("GET", "/v1/ledger/verify", {}, "auditor"),
    ]
    for method, path, kwargs, right in routes:
        for key in (None, "garbage", "Bearer", wrong_secret, "tm_000000000000_" + "A" * 43):
            response = world.call(method, path, key, **kwargs)
            assert response.status_code == 401, (method, path, key, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
        for key in ("ice_requester", "ice_auditor", "ice_admin", "cbp_requester", "cbp_admin"):
            response = world.call(method, path, key, **kwargs)
            role = key.split("_")[1]
            allowed = role == "admin" or role == right
            if not allowed:
                expected = 403
            elif key.startswith("cbp") and batch_id in path:
                expected = 404  # another agency's batch
            else:
                expected = 202 if path.startswith("/v1/batches?") else 200
            assert response.status_code == expected, (method, path, key, response.status_code, response.text)
    for batch in ("b-0000000000000000", batch_id):
        assert world.call("GET", f"/v1/batches/{batch}", "ice_auditor").status_code == 403


def test_another_agencys_batch_is_invisible(world: World) -> None:
    batch_id = submit(world, "ice_requester", tiny_csv(world)).json()["batch_id"]
    world.wait_done(batch_id)
    missing = "b-" + "f" * 16
    for suffix in ("", "/disclosed.csv", "/rejected.csv", "/unmatched.csv"):
        foreign = world.call("GET", f"/v1/batches/{batch_id}{suffix}", "cbp_requester")
        absent = world.call("GET", f"/v1/batches/{missing}{suffix}", "cbp_requester")
        assert foreign.status_code == absent.status_code == 404
        assert foreign.json() == absent.json()
        assert world.call("GET", f"/v1/batches/{batch_id}{suffix}", "ice_admin").status_code == 200
    assert world.call("GET", f"/v1/batches/{batch_id}/manifest.json", "ice_requester").status_code == 200
    assert world.call("GET", f"/v1/batches/{batch_id}/manifest.json", "cbp_requester").status_code == 404


def test_revoked_key_is_refused_while_the_server_runs(world: World) -> None:
    command = (sys.executable, "-m", "taxmatch.api.cli", "--home", str(world.home), "keys")
    key = run(*command, "create", "--agency", "ICE", "--role", "requester", env=world.env).strip()
    assert world.call("POST", "/v1/lookup", key, json=INVALID_REQUEST).status_code == 200
    run(*command, "revoke", key.split("_")[1], env=world.env)
    assert world.call("POST", "/v1/lookup", key, json=INVALID_REQUEST).status_code == 401
    assert "revoked" in run(*command, "list", env=world.env)


def test_lookup_agrees_with_batch_run_for_every_request(world: World) -> None:
    expected = expected_outcomes(world.expected_dir)
    rows = read_rows(world.data / "requests.csv")
    assert len(expected) >= REQUESTS
    compared = 0
    for row in rows:
        outcome, codes, disclosed = expected[row["request_id"]]
        if codes == "MALFORMED_RECORD":
            continue  # a row the CSV reader could not read has no JSON equivalent
        response = world.call("POST", "/v1/lookup", "ice_requester", json=row)
        assert response.status_code == 200, response.text
        answer = response.json()
        LookupResponse.model_validate(answer)  # what /docs promises, though the route returns its JSON directly
        assert answer["request_id"] == row["request_id"]
        assert (answer["outcome"], ";".join(answer["reason_codes"])) == (outcome, codes), row["request_id"]
        if outcome == "DISCLOSED":
            got = {name: str(value) for name, value in answer["disclosure"].items() if name != "match_probability"}
            assert got == {name: disclosed[name] for name in got}
            # The probability does not depend on the other requests scored with it: equal to the digit.
            assert f"{answer['disclosure']['match_probability']:.6f}" == disclosed["match_probability"]
        else:
            assert answer["disclosure"] is None
        compared += 1
    assert compared >= REQUESTS - 2
    assert {outcome for outcome, _, _ in expected.values()} == {"DISCLOSED", "REJECTED", "NOT_MATCHED"}


def test_concurrent_lookups_beside_a_batch_answer_as_the_batch(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    expected = expected_outcomes(world.expected_dir)
    rows = [
        row for row in read_rows(world.data / "requests.csv") if expected[row["request_id"]][1] != "MALFORMED_RECORD"
    ]
    headers = {"Authorization": f"Bearer {world.keys['ice_requester']}"}

    def lookups(part: list[dict[str, str]]) -> list[tuple[str, str, str]]:
        with httpx.Client(base_url=world.server.base_url, headers=headers, timeout=60) as client:
            answers = []
            for row in part:
                response = client.post("/v1/lookup", json=row)
                assert response.status_code == 200, response.text
                answer = response.json()
                answers.append((answer["request_id"], answer["outcome"], ";".join(answer["reason_codes"])))
            return answers

    # A batch holds the database in chunks meanwhile (its chunks take every DuckDB thread back).
    batch = submit(world, "ice_requester", (world.data / "requests.csv").read_bytes())
    assert batch.status_code == 202
    with ThreadPoolExecutor(8) as pool:
        answered = [answer for part in pool.map(lookups, [rows[start::8] for start in range(8)]) for answer in part]
    assert len(answered) == len(rows)
    for request_id, outcome, codes in answered:
        assert (outcome, codes) == expected[request_id][:2], request_id
    assert world.wait_done(batch.json()["batch_id"])["status"] == "done"


def test_lookup_422_names_the_field(world: World) -> None:
    response = world.call("POST", "/v1/lookup", "ice_requester", json={**INVALID_REQUEST, "frist_name": "ANA"})
    assert response.status_code == 422
    assert [problem["field"] for problem in response.json()["detail"]] == ["frist_name"]
    response = world.call("POST", "/v1/lookup", "ice_requester", json={**INVALID_REQUEST, "street": "x" * 1001})
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "street"
    assert "xxxx" not in response.text  # the offending value is not echoed
    response = world.call("POST", "/v1/lookup", "ice_requester", content=b"[1, 2]")
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "body"
    response = world.call("POST", "/v1/lookup", "ice_requester", json={"zip": 2134, "request_id": 7})
    assert response.status_code == 200 and response.json()["request_id"] == "7"
    response = world.call("POST", "/v1/lookup", "ice_requester", json={"as_of": "2031-01-01"})
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "as_of"


def test_batch_body_problems(world: World) -> None:
    response = submit(world, "ice_requester", b"request_id,first_name\nA,B\n")
    assert response.status_code == 422 and "last_name" in response.json()["detail"][0]["message"]
    assert submit(world, "ice_requester", tiny_csv(world), "application/json").status_code == 415
    too_big = b"x" * (ApiLimits().max_lookup_body_bytes + 1)
    assert world.call("POST", "/v1/lookup", "ice_requester", content=too_big).status_code == 413


def test_ndjson_batch_matches_batch_run(world: World) -> None:
    rows = read_rows(world.data / "requests.csv")
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    batch_id = submit(world, "ice_requester", body, "application/x-ndjson").json()["batch_id"]
    status = world.wait_done(batch_id)
    assert status["status"] == "done" and status["processed"] == status["total"] == len(rows)
    for name in OUTPUTS:
        got = world.call("GET", f"/v1/batches/{batch_id}/{name}", "ice_requester")
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert got.content == (world.expected_dir / name).read_bytes(), name
    assert sum(status["counts"].values()) == len(rows)


def test_the_same_batch_twice_is_refused_and_a_rerun_is_a_new_batch_naming_it(world: World) -> None:
    lines = (world.data / "requests.csv").read_bytes().splitlines(keepends=True)
    body = b"".join([lines[0], *lines[5:25]])
    before = world.call("GET", "/v1/ledger/verify", "ice_auditor").json()
    first = submit(world, "ice_requester", body)
    assert first.status_code == 202, first.text
    first_id = first.json()["batch_id"]
    world.wait_done(first_id)
    again = submit(world, "ice_admin", body)  # another key of the same agency: the same batch
    assert again.status_code == 409, again.text
    assert again.json()["batch_id"] == first_id and again.json()["status"] == "done"
    assert again.headers["location"] == again.json()["status_url"] == f"/v1/batches/{first_id}"
    foreign = submit(world, "cbp_requester", body)
    assert foreign.status_code == 202, "another agency's batch is its own"
    world.wait_done(foreign.json()["batch_id"], key="cbp_requester")
    rerun = submit(world, "ice_requester", body, rerun=True)
    assert rerun.status_code == 202, rerun.text
    assert rerun.json()["batch_id"] == f"{first_id}-r1"
    world.wait_done(f"{first_id}-r1")
    manifest = json.loads((world.home / "batches" / f"{first_id}-r1" / "manifest.json").read_text())
    assert manifest["repeats"] == first_id
    # A repeat of the re-run is refused too, and names the latest run.
    assert submit(world, "ice_requester", body).json()["batch_id"] == f"{first_id}-r1"
    after = world.call("GET", "/v1/ledger/verify", "ice_auditor").json()
    assert after["ok"] is True and after["entries"] - before["entries"] == 3 * 20


def test_access_log_has_no_personal_data(world: World) -> None:
    rows = read_rows(world.data / "requests.csv")
    world.call("POST", "/v1/lookup", "ice_requester", json=rows[0])
    time.sleep(0.2)
    text = "".join(path.read_text() for path in world.server.logs)
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and all(set(line) == {"time", "key_id", "method", "route", "status", "latency_ms"} for line in lines)
    assert {"/v1/lookup", "/v1/batches/{batch_id}", "/v1/batches/{batch_id}/{file_name}"} <= {x["route"] for x in lines}
    assert any(line["status"] == 401 and line["key_id"] == "-" for line in lines)
    for row in rows:
        for value in (row["last_name"], row["street"], row["tin"], row["dob"]):
            if value and len(value) > 3:
                assert value not in text, "personal data in the server log"


def test_batch_resumes_after_the_server_is_killed(world: World) -> None:
    """Kill -9 mid-batch, restart: every record gets exactly one outcome, identical to batch run."""
    before = world.call("GET", "/v1/ledger/verify", "ice_auditor").json()
    world.server.stop()
    world.server.start({"TAXMATCH_API_BATCH_CHUNK_RECORDS": "4", "TAXMATCH_API_BATCH_CHUNK_DELAY_SECONDS": "0.3"})
    body = (world.data / "requests.csv").read_bytes()
    batch_id = submit(world, "ice_requester", body, rerun=True).json()["batch_id"]
    deadline = time.monotonic() + 60
    while True:
        status = world.call("GET", f"/v1/batches/{batch_id}", "ice_requester").json()
        if status["processed"] >= 12:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["processed"] < status["total"], "the batch finished before the kill"
    world.server.stop(kill=True)
    world.server.start({"TAXMATCH_API_BATCH_CHUNK_RECORDS": "4"})
    status = world.wait_done(batch_id)
    assert status["status"] == "done" and status["processed"] == status["total"]
    for name in OUTPUTS:
        got = world.call("GET", f"/v1/batches/{batch_id}/{name}", "ice_requester").content
        assert comparable(got) == comparable((world.expected_dir / name).read_bytes()), name
    after = world.call("GET", "/v1/ledger/verify", "ice_auditor").json()
    assert after["ok"] is True
    assert after["entries"] - before["entries"] == status["total"], "an outcome was accounted twice or not at all"
    manifest = json.loads((world.home / "batches" / batch_id / "manifest.json").read_text())
    assert manifest["counts"]["total"] == status["total"] and manifest["agency"] == "ICE"


def test_lookups_are_durable_when_answered_and_signed_in_groups(world: World) -> None:
    """Every answered lookup survives kill -9; a checkpoint every N lookups; the rest signed at restart."""
    world.server.stop()
    world.server.start({"TAXMATCH_API_LEDGER_CHECKPOINT_LOOKUPS": "3"})
    before = world.call("GET", "/v1/ledger/verify", "ice_auditor").json()
    assert before["ok"] is True and before["unverified"] == 0  # a clean stop signed everything
    rows = read_rows(world.data / "requests.csv")[:7]
    for row in rows:
        assert world.call("POST", "/v1/lookup", "ice_requester", json=row).status_code == 200
    world.server.stop(kill=True)  # no shutdown checkpoint
    verify = (TAXMATCH, "--home", str(world.home), "ledger", "verify", "--json")
    killed = subprocess.run(verify, env=world.env, capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == 1, "by default an unsigned tail fails verification"
    assert json.loads(killed.stdout)["first_bad"] == before["entries"] + 7
    relaxed = json.loads(run(*verify, "--allow-unsigned-tail", env=world.env))
    assert relaxed["ok"] is True and relaxed["entries"] == before["entries"] + 7
    assert relaxed["signed_through"] == before["entries"] + 6 and relaxed["unverified"] == 1  # signed at 3 and 6
    world.server.start({"TAXMATCH_API_LEDGER_CHECKPOINT_LOOKUPS": "3"})
    after = world.call("GET", "/v1/ledger/verify", "ice_auditor").json()
    assert after["ok"] is True and after["entries"] == relaxed["entries"], "an answered lookup was lost"
    assert after["signed_through"] == after["entries"]  # the tail left by the killed server is signed at start
    assert world.call("POST", "/v1/lookup", "ice_requester", json=rows[0]).status_code == 200
    during = world.call("GET", "/v1/ledger/verify", "ice_auditor").json()
    # Fail-closed like the CLI: the server signs its own unsigned lookup first, so it verifies to its end.
    assert during["ok"] is True and during["entries"] == after["entries"] + 1 and during["unverified"] == 0


# ---- in-process units (no server) ------------------------------------------------------------------


def test_key_store_round_trip(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "api-keys.json")
    key, text = store.create("ICE", Role.AUDITOR)
    assert store.authenticate(text) == key
    assert store.authenticate(text + "x") is None
    assert store.authenticate(text.replace(key.key_id, "0" * 12)) is None
    other = KeyStore(tmp_path / "api-keys.json")
    other.revoke(key.key_id)
    assert store.authenticate(text) is None  # the first store sees the other's change
    with pytest.raises(ValueError, match="agency"):
        store.create("", Role.REQUESTER)


def test_limits_from_environment() -> None:
    limits = ApiLimits.from_environment({"TAXMATCH_API_RATE_LIMIT_PER_MINUTE": "5"})
    assert limits.rate_limit_per_minute == 5 and limits.batch_chunk_delay_seconds == 0.0
    with pytest.raises(ValueError, match="TAXMATCH_API_MAX_BATCH_RECORDS"):
        ApiLimits.from_environment({"TAXMATCH_API_MAX_BATCH_RECORDS": "many"})


def test_rate_and_volume_limits() -> None:
    from fastapi import HTTPException

    from taxmatch.api.app import KeyMeter

    meter = KeyMeter(ApiLimits(rate_limit_per_minute=3, volume_limit_per_day=10))
    for _ in range(3):
        meter.hit("k1")
    with pytest.raises(HTTPException) as caught:
        meter.hit("k1")
    assert caught.value.status_code == 429 and caught.value.headers is not None
    meter.hit("k2")  # per key
    meter.take_volume("k1", 10)
    with pytest.raises(HTTPException):
        meter.take_volume("k1", 1)


def test_volume_window_is_a_rolling_day() -> None:
    from fastapi import HTTPException

    from taxmatch.api.app import KeyMeter

    now = [1_000.0]
    meter = KeyMeter(ApiLimits(volume_limit_per_day=10), clock=lambda: now[0])
    meter.take_volume("k1", 4)
    now[0] += 0.5
    meter.take_volume("k1", 3)  # same second as the first: one bucket
    now[0] += 3_600.0
    meter.take_volume("k1", 3)
    for almost_a_day_later in (86_400.0 - 3_600.0, 86_400.0 - 3_600.0 + 0.5):
        now[0] = 1_000.0 + almost_a_day_later
        with pytest.raises(HTTPException):
            meter.take_volume("k1", 1)
    now[0] = 1_000.0 + 86_400.0 + 1.0  # the first second's 7 records are a day old
    meter.take_volume("k1", 7)
    with pytest.raises(HTTPException):
        meter.take_volume("k1", 1)
    now[0] += 3_601.0  # and now the 3 of the next hour
    meter.take_volume("k1", 3)


def test_a_stray_quote_in_a_batch_body_costs_its_own_line_only(world: World) -> None:
    # Issue 13, finding 2: an unterminated quote swallowed the next requests: no outcome, no ledger entry.
    header, *lines = (world.data / "requests.csv").read_bytes().splitlines(keepends=True)[:41]
    lines[5] = lines[5].replace(b",", b',"', 1)  # `"` before the first name
    lines[17] = lines[17].replace(b",", b'"X,', 2).replace(b'"X,', b",", 1)  # `"X` after the first name
    batch_id = submit(world, "ice_requester", header + b"".join(lines)).json()["batch_id"]
    status = world.wait_done(batch_id)
    assert status["status"] == "done" and status["total"] == sum(status["counts"].values()) == len(lines)
    written: list[str] = []
    for name in OUTPUTS:
        written += [row["request_id"] for row in comparable(world.call("GET", f"/v1/batches/{batch_id}/{name}",
                                                                        "ice_requester").content)]  # fmt: skip
    assert sorted(written) == sorted(line.split(b",", 1)[0].decode() for line in lines)
    rejected = comparable(world.call("GET", f"/v1/batches/{batch_id}/rejected.csv", "ice_requester").content)
    broken = [row for row in rejected if "line 7: first_name: quote not closed" in row["reasons"]]
    assert [row["reason_codes"] for row in broken] == ["MALFORMED_RECORD"]


def test_random_bytes_are_refused_as_a_batch(world: World) -> None:
    noise = random.Random(13).randbytes(100_000)
    for content_type in ("application/x-ndjson", "text/csv"):
        response = submit(world, "ice_requester", noise, content_type)
        assert response.status_code == 422, content_type
        assert "not a " in response.json()["detail"][0]["message"]
