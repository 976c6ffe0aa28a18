"""The running server of a workspace, as the command line finds and uses it.

DuckDB lets one process hold the workspace database; while `taxmatch serve` runs, that is the
server. So that the office can still look up and produce its accounting, the server announces
itself in ``<home>/server.json`` (mode 0600, written atomically, removed at shutdown): its
loopback address, its process id and a random token made for this run. Whoever can read the
file is the workspace's owner (who can read the database key anyway). The command line then:

- `lookup`: sends the request to ``POST /v1/operator/lookup``; the server decides and accounts
  it exactly as its own lookups, in the same ledger order;
- `batch run`: sends its arguments to ``POST /v1/operator/batch-run``; the server runs the
  command line's own `pipeline.run_batch` (same files, manifest and ledger entries);
- `ledger verify`, `ledger report`, `ledger export`: ask ``POST /v1/operator/ledger-snapshot``
  for an encrypted copy of the ledger tables taken in one transaction, and read that copy with
  the same code as the database (`ledger_connection`).

The operator routes answer only on a loopback connection with the token, and 404 otherwise;
they are not in the OpenAPI document (they are not part of the agency API).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx

from taxmatch.database import DatabaseLockedError, connect, open_snapshot
from taxmatch.settings import Workspace

SERVER_FILE = "server.json"
SNAPSHOT_DIRECTORY = ".snapshots"
OPERATOR_PREFIX = "/v1/operator"
# A ledger snapshot of millions of entries, or a lookup behind a batch chunk, may take a while.
OPERATOR_TIMEOUT_SECONDS = 600.0


class ServerError(RuntimeError):
    """The announced server could not do what was asked; the message says what happened."""


class ServerUnreachable(ServerError):
    """Nothing answers at the announced address (a server killed with -9 leaves its file behind)."""


def server_file(workspace: Workspace) -> Path:
    return Path(workspace.home) / SERVER_FILE


def snapshot_directory(workspace: Workspace) -> Path:
    directory = Path(workspace.home) / SNAPSHOT_DIRECTORY
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def new_operator_token() -> str:
    return secrets.token_urlsafe(32)


def announce(workspace: Workspace, url: str, token: str) -> None:
    """Write server.json (0600) atomically: a reader sees the whole file or the previous one."""
    path = server_file(workspace)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"url": url, "pid": os.getpid(), "token": token}, handle)
    os.replace(temporary, path)


def withdraw(workspace: Workspace, token: str) -> None:
    """Remove server.json if it is still this run's (a newer server may have replaced it)."""
    path = server_file(workspace)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class RunningServer:
    url: str
    token: str

    def _post(
        self, route: str, body: dict[str, Any], timeout: httpx.Timeout | float = OPERATOR_TIMEOUT_SECONDS
    ) -> dict[str, Any]:
        try:
            response = httpx.post(
                self.url + OPERATOR_PREFIX + route,
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=timeout,
            )
        except httpx.ConnectError:
            # Nothing listens: the request never reached a server, so nothing was accounted.
            raise ServerUnreachable(f"nothing answers at {self.url}, announced in {SERVER_FILE}") from None
        except httpx.HTTPError as error:
            raise ServerError(f"the running server at {self.url} did not answer ({type(error).__name__})") from None
        if response.status_code != 200:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServerError(f"the running server at {self.url} refused: {detail}")
        answer: dict[str, Any] = response.json()
        return answer

    def lookup(
        self, request: dict[str, Any], as_of: str, agency: str, actor: str, *, explain: bool = False
    ) -> dict[str, Any]:
        """The decision of one request, decided and accounted by the server (as ``actor``)."""
        order = {"request": request, "as_of": as_of, "agency": agency, "actor": actor, "explain": explain}
        return self._post("/lookup", order)

    def batch_run(self, order: dict[str, Any]) -> dict[str, Any]:
        """`taxmatch batch run` done by the server (`/v1/operator/batch-run`); its `BatchResult` as JSON.

        No read deadline: a batch of millions runs for minutes. Whatever happens to this
        command, the server finishes and accounts for the batch it started.
        """
        return self._post("/batch-run", order, httpx.Timeout(OPERATOR_TIMEOUT_SECONDS, read=None))

    def ledger_snapshot(self, *, checkpoint: bool) -> Path:
        """A new encrypted file with the ledger tables; the caller removes it."""
        return Path(self._post("/ledger-snapshot", {"checkpoint": checkpoint})["path"])


def running_server(workspace: Workspace) -> RunningServer | None:
    """The server announced in the workspace, if its process is alive."""
    try:
        announced = json.loads(server_file(workspace).read_text(encoding="utf-8"))
        url, pid, token = str(announced["url"]), int(announced["pid"]), str(announced["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid):
        return None
    return RunningServer(url, token)


@contextmanager
def ledger_connection(workspace: Workspace, *, checkpoint: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to read the ledger from: the database itself, or a snapshot from the running server.

    ``checkpoint``: sign the current head first (a write, so the database is opened for writing
    when no server runs).
    """
    try:
        con = connect(workspace, read_only=not checkpoint)
    except DatabaseLockedError:
        server = running_server(workspace)
        if server is None:
            raise
        path = server.ledger_snapshot(checkpoint=checkpoint)
        try:
            con = open_snapshot(workspace, path)
            try:
                yield con
            finally:
                con.close()
        finally:
            path.unlink(missing_ok=True)
            Path(str(path) + ".wal").unlink(missing_ok=True)
        return
    try:
        if checkpoint:
            from taxmatch.ledger import Ledger, signing_key

            ledger = Ledger(con)
            ledger.ensure_schema()
            ledger.checkpoint(signing_key(workspace))
        yield con
    finally:
        con.close()


def remove_snapshots(workspace: Workspace) -> None:
    """Snapshots left by commands that were killed (at server start: nobody reads them any more)."""
    directory = Path(workspace.home) / SNAPSHOT_DIRECTORY
    if directory.is_dir():
        shutil.rmtree(directory, ignore_errors=True)
