"""The server sheds abuse (issue 13, finding 7), over real HTTP against `python -m taxmatch.api.server`.

Each test starts its own server on a fresh workspace (no master is needed: nothing here
reaches a decision), with short guard timeouts so the suite stays quick, and, for the
descriptor test, a low open-file limit set by the shell before the server starts.
"""

from __future__ import annotations

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

from taxmatch.api.guard import RepeatSummary, connection_cap
from taxmatch.api.keys import KeyStore, Role
from taxmatch.settings import Workspace

HEADER_TIMEOUT = 2.0


@dataclass
class Running:
    process: subprocess.Popen[str]
    base_url: str
    host: str
    port: int
    log: Path
    key: str

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start_server(root: Path, extra_env: dict[str, str] | None = None, open_files: int | None = None) -> Running:
    home = root / "home"
    env = {**os.environ, "TAXMATCH_KEY_FILE": str(root / "keys" / "db.key"), "XDG_CONFIG_HOME": str(root / "cfg")}
    env.pop("TAXMATCH_HOME", None)
    env.update({"TAXMATCH_API_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT), **(extra_env or {})})
    _, key = KeyStore.for_workspace(Workspace(home)).create("ICE", Role.REQUESTER)
    command = [sys.executable, "-m", "taxmatch.api.server", "--home", str(home), "--port", "0"]
    if open_files is not None:  # soft and hard: the server cannot raise it back
        command = ["sh", "-c", f'ulimit -n {open_files} && exec "$@"', "sh", *command]
    log = root / "server.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on http://" in line, log.read_text()
    base_url = line.split("listening on ")[1].split()[0]
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/healthz", timeout=2).json() == {"status": "ok"}:
                return Running(process, base_url, host, int(port), log, key)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"server never became healthy: {log.read_text()[-2000:]}")


def stop(running: Running) -> None:
    running.process.terminate()
    try:
        running.process.wait(30)
    finally:
        if running.process.stdout is not None:
            running.process.stdout.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    running = start_server(tmp_path)
    yield running
    stop(running)


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the peer has closed: a read gives EOF or a reset instead of blocking."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.setblocking(True)


def test_deeply_nested_json_lookup_is_a_client_error(server: Running) -> None:
    headers = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"}
    for body in (b"[" * 30_000, b'{"first_name": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", b"{" * 20 + b"}" * 20):
        response = httpx.post(server.base_url + "/v1/lookup", content=body, headers=headers, timeout=30)
        assert response.status_code == 422, response.text
        assert "nested deeper" in response.text
    ndjson = b"[" * 30_000 + b"\n"
    response = httpx.post(
        server.base_url + "/v1/batches",
        content=ndjson,
        headers={**headers, "Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in server.stderr() and "RecursionError" not in server.stderr()
    # Brackets inside strings are text, not nesting: this one gets past the depth check to validation.
    quoted = b'{"first_name": "' + b"[" * 100 + b'"}'
    response = httpx.post(server.base_url + "/v1/lookup", content=quoted, headers=headers, timeout=30)
    assert "nested deeper" not in response.text


def test_a_client_trickling_its_request_head_is_disconnected(server: Running) -> None:
    """Slowloris: a header byte every second never completes the head; the head deadline closes it."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=10) as slow:
        disconnected_after: float | None = None
        for byte in head:
            try:
                slow.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                disconnected_after = time.monotonic() - started
                break
            time.sleep(1.0)
            if closed_by_server(slow):
                disconnected_after = time.monotonic() - started
                break
            assert time.monotonic() - started < HEADER_TIMEOUT + 5, "still connected well past the head deadline"
    assert disconnected_after is not None
    assert HEADER_TIMEOUT - 0.5 <= disconnected_after <= HEADER_TIMEOUT + 2.5
    # The server still answers, and said so once, not per connection.
    assert httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200


def test_a_silent_connection_is_closed_after_the_head_deadline(server: Running) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as silent:
        silent.settimeout(HEADER_TIMEOUT + 3)
        started = time.monotonic()
        assert silent.recv(1) == b""
        assert time.monotonic() - started <= HEADER_TIMEOUT + 1.5


@pytest.fixture
def small_body_deadline(tmp_path: Path) -> Iterator[Running]:
    running = start_server(
        tmp_path, {"TAXMATCH_API_BODY_TIMEOUT_SECONDS": "1", "TAXMATCH_API_BODY_MIN_BYTES_PER_SECOND": "100"}
    )
    yield running
    stop(running)


def test_a_trickled_body_is_cut_off(small_body_deadline: Running) -> None:
    server = small_body_deadline
    head = (
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.key}\r\nContent-Length: 5000\r\n\r\n"
    ).encode()
    stop_at = time.monotonic() + 10
    with socket.create_connection((server.host, server.port), timeout=10) as slow:
        slow.sendall(head)
        cut = False
        while time.monotonic() < stop_at:  # the body deadline is 1 s here, plus 1 s per 100 bytes
            try:
                slow.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            time.sleep(0.5)
            if closed_by_server(slow):
                cut = True
                break
    assert cut
    assert time.monotonic() < stop_at
    assert "Traceback" not in server.stderr()


def test_body_deadline_grows_with_the_bytes_received(small_body_deadline: Running) -> None:
    """A body at 400 bytes/s (above the 100 bytes/s minimum) takes 4 s, past the 1 s base, and passes."""
    server = small_body_deadline
    body = b'{"first_name": "' + b"A" * 1570 + b'"}'
    head = (
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.key}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((server.host, server.port), timeout=10) as client:
        client.sendall(head)
        for start in range(0, len(body), 100):
            client.sendall(body[start : start + 100])
            time.sleep(0.25)
        answer = client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 422"), answer[:200]  # validation (name too long), not a cut-off


def test_idle_sockets_beyond_the_open_file_limit_do_not_stop_healthz(tmp_path: Path) -> None:
    """400 idle sockets against a server limited to 256 open files: /healthz answers, few log lines.

    Before the guard, accept() failed with EMFILE once descriptors ran out and /healthz timed out.
    """
    server = start_server(tmp_path, open_files=256)
    idle: list[socket.socket] = []
    try:
        for _ in range(400):
            idle.append(socket.create_connection((server.host, server.port), timeout=5))
        started = time.monotonic()
        for _ in range(5):
            response = httpx.get(server.base_url + "/healthz", timeout=5)
            assert response.status_code == 200
        assert time.monotonic() - started < 5
        # The evicted ones were the oldest idle sockets.
        time.sleep(0.3)
        assert sum(closed_by_server(sock) for sock in idle) >= 400 - connection_cap(10_000, 256)
    finally:
        for sock in idle:
            sock.close()
        stop(server)
    log = server.stderr()
    assert "Too many open files" not in log
    assert log.count("connection cap of") <= 2, log[-2000:]


def test_a_busy_server_at_its_cap_still_serves_whoever_gets_in(tmp_path: Path) -> None:
    """With the cap at 20 and 60 sockets trickling heads, concurrent /healthz calls all answer."""
    server = start_server(tmp_path, {"TAXMATCH_API_MAX_CONNECTIONS": "20"})
    idle: list[socket.socket] = []
    failures: list[str] = []
    try:
        for _ in range(60):
            sock = socket.create_connection((server.host, server.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            idle.append(sock)

        def probe() -> None:
            try:
                if httpx.get(server.base_url + "/healthz", timeout=5).status_code != 200:
                    failures.append("status")
            except httpx.HTTPError as error:
                failures.append(type(error).__name__)

        threads = [threading.Thread(target=probe) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for sock in idle:
            sock.close()
        stop(server)
    assert failures == []


def test_repeat_summary_shows_the_first_and_counts_the_rest() -> None:
    import logging

    summary = RepeatSummary(interval_seconds=3600)
    records = [
        logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "accept failed: %s", ("EMFILE",), None)
        for _ in range(1000)
    ]
    shown = [record for record in records if summary.filter(record)]
    assert len(shown) == 1
    assert "accept failed: EMFILE" in shown[0].getMessage()
    other = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "another message", (), None)
    assert summary.filter(other)
    summary.interval_seconds = 0
    later = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "accept failed: %s", ("EMFILE",), None)
    assert summary.filter(later)
    assert "999 more" in later.getMessage()


def test_connection_cap_stays_below_the_open_file_limit() -> None:
    assert connection_cap(10_000, 1024) == 1024 - 128
    assert connection_cap(100, 1024) == 100
    assert connection_cap(10_000, 256) == 256 - 64
