from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from taxmatch import database
from taxmatch.ledger import Ledger, export, export_public_key, signing_key
from taxmatch.settings import Workspace

from ledger_helpers import Clock, make_events


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv(database.DB_KEY_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(tmp_path / "keys" / "db.key"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("TAXMATCH_HOME", raising=False)
    return Workspace(tmp_path / "home")


@pytest.fixture
def con(workspace: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = database.connect(workspace)
    yield connection
    connection.close()


@pytest.fixture
def ledger(con: duckdb.DuckDBPyConnection) -> Ledger:
    result = Ledger(con, clock=Clock())
    result.ensure_schema()
    return result


@pytest.fixture
def signer(workspace: Workspace) -> Ed25519PrivateKey:
    return signing_key(workspace)


@pytest.fixture
def public_pem(workspace: Workspace, signer: Ed25519PrivateKey) -> bytes:
    return export_public_key(workspace)


@pytest.fixture
def exported(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, ledger: Ledger, signer: Ed25519PrivateKey, public_pem: bytes
) -> Path:
    """20 entries; signed checkpoints after entries 10 and 15; entries 16-20 unsigned."""
    ledger.append(make_events(10))
    ledger.checkpoint(signer)
    ledger.append(make_events(5, start=10))
    ledger.checkpoint(signer)
    ledger.append(make_events(5, start=15))
    out = tmp_path / "ledger.jsonl"
    export(con, out, public_key_pem=public_pem)
    return out


EditLines = Callable[[list[str]], list[str]]
