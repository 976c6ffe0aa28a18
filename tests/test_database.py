"""The workspace database is encrypted at rest and refuses to open without the right key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from taxmatch import database
from taxmatch.database import DatabaseKeyError, connect, open_database
from taxmatch.settings import Workspace

NAME = "Bartholomew Quincyworth"
TIN = "987654321"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv(database.DB_KEY_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(tmp_path / "keys" / "db.key"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return Workspace(tmp_path / "home")


def _write_secret(workspace: Workspace) -> None:
    con = connect(workspace)
    con.execute("CREATE TABLE people (name VARCHAR, tin VARCHAR)")
    con.execute("INSERT INTO people VALUES (?, ?)", [NAME, TIN])
    con.close()


def _raw_bytes(workspace: Workspace) -> bytes:
    data = workspace.database_path.read_bytes()
    wal = workspace.database_path.with_name(workspace.database_path.name + ".wal")
    if wal.exists():
        data += wal.read_bytes()
    return data


def test_first_use_creates_a_0600_key_outside_the_workspace(workspace: Workspace, tmp_path: Path) -> None:
    opened = open_database(workspace)
    opened.connection.close()
    key_file = tmp_path / "keys" / "db.key"
    assert opened.notice is not None
    assert opened.notice.key_file == key_file
    assert str(key_file) in opened.notice.message
    assert key_file.read_text().strip() not in opened.notice.message
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The second open finds the key: no notice.
    again = open_database(workspace)
    again.connection.close()
    assert again.notice is None


def test_default_key_file_is_under_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(database.DB_KEY_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.delenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    workspace = Workspace(tmp_path / "home")
    opened = open_database(workspace)
    opened.connection.close()
    expected = database.default_key_file(workspace)
    assert opened.notice is not None and opened.notice.key_file == expected
    assert expected.parent == tmp_path / "config" / "taxmatch" / "keys"
    assert len(expected.stem) == 16


def test_no_plaintext_on_disk_and_reopen_reads_back(workspace: Workspace) -> None:
    _write_secret(workspace)
    raw = _raw_bytes(workspace)
    assert len(raw) > 0
    for secret in (NAME, TIN, NAME.upper(), "Quincyworth"):
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw
    con = connect(workspace, read_only=True)
    assert con.execute("SELECT name, tin FROM people").fetchall() == [(NAME, TIN)]
    con.close()


def test_uncheckpointed_wal_is_encrypted_too(workspace: Workspace) -> None:
    con = connect(workspace)
    con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("CREATE TABLE people (name VARCHAR, tin VARCHAR)")
    con.execute("INSERT INTO people VALUES (?, ?)", [NAME, TIN])
    # While the connection is open the change may sit in the WAL: it must not be plaintext.
    raw = _raw_bytes(workspace)
    assert NAME.encode() not in raw and TIN.encode() not in raw
    con.close()
    assert NAME.encode() not in _raw_bytes(workspace)


def test_key_from_environment_variable(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(database.DB_KEY_ENVIRONMENT_VARIABLE, "0123456789abcdef" * 4)
    opened = open_database(workspace)
    opened.connection.execute("CREATE TABLE t (a INTEGER)")
    opened.connection.close()
    assert opened.notice is None
    assert not Path(os.environ[database.KEY_FILE_ENVIRONMENT_VARIABLE]).exists()


def test_missing_key_for_existing_database_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    _write_secret(workspace)
    (tmp_path / "keys" / "db.key").unlink()
    with pytest.raises(DatabaseKeyError, match="refusing to start") as caught:
        connect(workspace)
    message = str(caught.value)
    assert "TAXMATCH_DB_KEY" in message or "does not exist" in message


def test_missing_default_key_for_existing_database_names_env_vars_and_file(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_secret(workspace)
    monkeypatch.delenv(database.KEY_FILE_ENVIRONMENT_VARIABLE)
    with pytest.raises(DatabaseKeyError, match="refusing to start") as caught:
        connect(workspace)
    message = str(caught.value)
    assert "TAXMATCH_DB_KEY" in message
    assert "TAXMATCH_KEY_FILE" in message
    assert str(database.default_key_file(workspace)) not in message  # a file that never existed
    assert str(database.default_key_directory()) in message
    # Nothing was created behind the operator's back.
    assert not database.default_key_file(workspace).exists()


def test_a_moved_workspace_is_told_where_its_key_may_be_not_a_file_that_never_existed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(database.DB_KEY_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.delenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    original = Workspace(tmp_path / "original")
    _write_secret(original)  # its key: the default key file named after the original path
    original_key = database.default_key_file(original)
    moved = Workspace(tmp_path / "moved")
    original.home.rename(moved.home)
    with pytest.raises(DatabaseKeyError) as caught:
        connect(moved)
    message = str(caught.value)
    assert str(database.default_key_file(moved)) not in message and not database.default_key_file(moved).exists()
    assert "moved" in message and "1 key file(s)" in message and str(original_key.parent) in message
    assert "TAXMATCH_KEY_FILE" in message and "TAXMATCH_DB_KEY" in message
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(original_key))  # what the message says to do
    connect(moved).close()


def test_wrong_key_is_refused_clearly(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_secret(workspace)
    monkeypatch.setenv(database.DB_KEY_ENVIRONMENT_VARIABLE, "A" * 44)
    with pytest.raises(DatabaseKeyError, match="wrong key") as caught:
        connect(workspace)
    assert "A" * 44 not in str(caught.value)
    assert caught.value.__cause__ is None


def test_key_file_inside_workspace_is_refused(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = workspace.home / "secrets" / "db.key"
    inside.parent.mkdir(parents=True)
    inside.write_text("B" * 44)
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(inside))
    with pytest.raises(DatabaseKeyError, match="outside the workspace"):
        connect(workspace)


def test_new_key_is_not_created_inside_workspace(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(workspace.home / "db.key"))
    with pytest.raises(DatabaseKeyError, match="outside the workspace"):
        connect(workspace)
    assert not (workspace.home / "db.key").exists()


def test_malformed_key_is_refused(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(database.DB_KEY_ENVIRONMENT_VARIABLE, "short'key")
    with pytest.raises(DatabaseKeyError, match="not valid"):
        connect(workspace)


def test_unencrypted_database_is_refused(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    workspace.home.mkdir(parents=True)
    plain = duckdb.connect(str(workspace.database_path))
    plain.execute("CREATE TABLE t (a INTEGER)")
    plain.close()
    with pytest.raises(DatabaseKeyError, match="refusing to start"):
        connect(workspace)  # no key for an existing database: refused, no key created
    monkeypatch.setenv(database.DB_KEY_ENVIRONMENT_VARIABLE, "C" * 44)
    with pytest.raises(DatabaseKeyError, match="not encrypted"):
        connect(workspace)


def test_read_only_without_database(workspace: Workspace) -> None:
    with pytest.raises(database.DatabaseError, match="no database"):
        connect(workspace, read_only=True)


def test_no_network_autoloading(workspace: Workspace) -> None:
    con = connect(workspace)
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() "
            "WHERE name IN ('autoinstall_known_extensions', 'autoload_known_extensions', 'temp_file_encryption')"
        ).fetchall()
    )
    con.close()
    assert settings == {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "temp_file_encryption": "true",
    }
