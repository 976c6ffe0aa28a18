"""The workspace database: one DuckDB file, encrypted at rest.

`connect(workspace)` opens ``workspace.database_path`` with DuckDB's database
encryption (AES-GCM via OpenSSL from the httpfs extension):

    base = duckdb.connect(":memory:")           # never autoloads / autoinstalls
    LOAD '<site-packages>/duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension'
    ATTACH '<workspace>/taxmatch.duckdb' AS taxmatch (ENCRYPTION_KEY '<key>')
    USE taxmatch

Writing an encrypted database needs OpenSSL, which DuckDB only gets from httpfs; the
extension cannot be downloaded here, so it is loaded from the file shipped by the PyPI
package ``duckdb-extension-httpfs`` (same version as DuckDB). Temporary files spilled
by large queries are encrypted too (``temp_file_encryption``).

Where the key comes from, first match wins:

1. ``TAXMATCH_DB_KEY``: the key itself (base64, urlsafe base64 or hex text; at least
   32 characters). DuckDB derives the AES key from this text.
2. ``TAXMATCH_KEY_FILE``: path of a file holding that text.
3. The default key file, outside the workspace:
   ``$XDG_CONFIG_HOME/taxmatch/keys/<sha256(workspace home)[:16]>.key`` (``~/.config``
   when ``XDG_CONFIG_HOME`` is unset), mode 0600.

If the database does not exist yet and no key is found, a random 32-byte key is written
to the default key file and a `KeyNotice` says where (`open_database` returns it;
`connect` logs it on the ``taxmatch.database`` logger). The library never prints.
If the database exists and no key is found, or the key is wrong, or a key file lies
inside the workspace directory, `DatabaseKeyError` is raised with a message saying what
to do. Key material never appears in a message or a log record.

Concurrency: DuckDB allows **one writer process** per database file. A second process
that opens the file (for writing, or for reading while a writer holds it) fails with
`DatabaseLockedError`. Several read-only processes may share the file when no writer is
open. Within one process, share one connection (or ``connection.cursor()`` per thread:
each cursor reads its own MVCC snapshot, so a long read on one never waits for writes on
another).

While `taxmatch serve` runs, the server process is that one writer for its whole life, and
the command line works *through it* (docs/api.md, "Many users, one workspace";
`taxmatch.api.running`): the server announces itself in ``<home>/server.json`` (mode 0600:
its address and a per-run token); `lookup` asks it to decide and account; `ledger verify`,
`ledger report` and `ledger export` ask it for a snapshot of the ledger tables taken in one
transaction on a cursor of its own (`copy_into_snapshot`, encrypted with the workspace key)
and read that with `open_snapshot`. Not a read-only second opening of this file, because
DuckDB refuses any second process while a writer holds it; not a shared snapshot of the
master and model for CLI lookups, because a lookup also appends to the ledger, which only
the writer may do.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import os
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from taxmatch.settings import Workspace

__all__ = [
    "DATABASE_ALIAS",
    "DB_KEY_ENVIRONMENT_VARIABLE",
    "KEY_FILE_ENVIRONMENT_VARIABLE",
    "DatabaseError",
    "DatabaseKeyError",
    "DatabaseLockedError",
    "KeyNotice",
    "OpenedDatabase",
    "check_outside_workspace",
    "connect",
    "copy_into_snapshot",
    "default_key_directory",
    "default_key_file",
    "ensure_database_key",
    "httpfs_extension_path",
    "key_directory",
    "open_database",
    "open_snapshot",
]

DB_KEY_ENVIRONMENT_VARIABLE = "TAXMATCH_DB_KEY"
KEY_FILE_ENVIRONMENT_VARIABLE = "TAXMATCH_KEY_FILE"
DATABASE_ALIAS = "taxmatch"
KEY_BYTES = 32
_MIN_KEY_CHARS = 32
_KEY_TEXT = re.compile(r"^[A-Za-z0-9+/=_-]+$")

logger = logging.getLogger(__name__)


class DatabaseError(RuntimeError):
    """The workspace database cannot be opened (other than a key problem)."""


class DatabaseKeyError(DatabaseError):
    """No usable key for the encrypted database; the message says what to do."""


class DatabaseLockedError(DatabaseError):
    """Another process holds the database (DuckDB allows one writer process)."""


@dataclass(frozen=True)
class KeyNotice:
    """A new database key was created; tell the operator where it is kept."""

    key_file: Path
    message: str


@dataclass(frozen=True)
class OpenedDatabase:
    connection: duckdb.DuckDBPyConnection
    notice: KeyNotice | None


@dataclass(frozen=True)
class _Key:
    text: str
    source: str  # a description for messages; never the key itself


def httpfs_extension_path() -> Path:
    """The httpfs extension file shipped by the ``duckdb-extension-httpfs`` package."""
    spec = importlib.util.find_spec("duckdb_extension_httpfs")
    if spec is None or spec.origin is None:
        raise DatabaseError(
            "the package duckdb-extension-httpfs is not installed; it is needed to write an encrypted "
            f"database (pip install duckdb-extension-httpfs=={duckdb.__version__})"
        )
    package_dir = Path(spec.origin).resolve().parent
    path = package_dir / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if not path.is_file():
        found = sorted(package_dir.glob("extensions/*/httpfs.duckdb_extension"))
        raise DatabaseError(
            f"no httpfs extension for DuckDB {duckdb.__version__} in {package_dir} "
            f"(found: {', '.join(str(p.parent.name) for p in found) or 'none'}); "
            "install duckdb-extension-httpfs of the same version as duckdb"
        )
    return path


def default_key_directory() -> Path:
    """``$XDG_CONFIG_HOME/taxmatch/keys`` or ``~/.config/taxmatch/keys``."""
    config_home = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config_home) if config_home else Path.home() / ".config"
    return base.expanduser() / "taxmatch" / "keys"


def _workspace_tag(workspace: Workspace) -> str:
    home = str(Path(workspace.home).expanduser().resolve())
    return hashlib.sha256(home.encode("utf-8")).hexdigest()[:16]


def default_key_file(workspace: Workspace) -> Path:
    return default_key_directory() / f"{_workspace_tag(workspace)}.key"


def key_directory(workspace: Workspace) -> tuple[Path, str]:
    """Directory and file-name stem where this workspace's key files live.

    With ``TAXMATCH_KEY_FILE`` set, that file's directory and stem; otherwise the
    default key directory and the workspace tag. Other key files (the ledger's
    signing key) are kept next to the database key under the same policy.
    """
    configured = os.environ.get(KEY_FILE_ENVIRONMENT_VARIABLE)
    if configured:
        path = Path(configured).expanduser().resolve()
        return path.parent, path.stem
    return default_key_directory(), _workspace_tag(workspace)


def check_outside_workspace(workspace: Workspace, path: Path) -> None:
    """Refuse a key file kept inside the workspace (it would travel with the data)."""
    home = Path(workspace.home).expanduser().resolve()
    resolved = path.expanduser().resolve()
    if resolved == home or home in resolved.parents:
        raise DatabaseKeyError(
            f"refusing to start: the key file {resolved} is inside the workspace {home}; "
            "keys must be kept outside the workspace (move it and point "
            f"{KEY_FILE_ENVIRONMENT_VARIABLE} at the new place)"
        )


def _validate_key_text(text: str, source: str) -> str:
    key = text.strip()
    if len(key) < _MIN_KEY_CHARS or not _KEY_TEXT.match(key):
        raise DatabaseKeyError(
            f"refusing to start: the database key from {source} is not valid; it must be base64 or hex "
            f"text of at least {_MIN_KEY_CHARS} characters (e.g. 32 random bytes, base64-encoded)"
        )
    return key


def _read_key_file(path: Path, source: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError as error:
        raise DatabaseKeyError(f"refusing to start: the key file {path} ({source}) does not exist") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DatabaseKeyError(
            f"refusing to start: cannot read the key file {path} ({source}): {type(error).__name__}"
        ) from error
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("key file %s is readable by other users; chmod 600 it", path)
    return _validate_key_text(text, source)


def _write_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never overwrite); its directory with 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _missing_key_message(workspace: Workspace) -> str:
    # The default key file is named after the workspace's path: naming the one this path
    # would have pointed the operator at a file that never existed when the folder was moved.
    directory = default_key_directory()
    try:
        kept = sum(1 for path in directory.glob("*.key") if path.is_file())
    except OSError:
        kept = 0
    where = (
        f"{directory} holds {kept} key file(s) named after the workspaces' original paths; "
        "one of them may be this workspace's"
        if kept
        else f"no key file was found in {directory}"
    )
    return (
        f"refusing to start: the database {workspace.database_path} exists but no key was found for this "
        f"workspace path (a moved or copied workspace keeps its key under its old path; {where}). Set "
        f"{KEY_FILE_ENVIRONMENT_VARIABLE} to the file holding the key, or {DB_KEY_ENVIRONMENT_VARIABLE} to the key"
    )


def _find_key(workspace: Workspace) -> _Key | None:
    direct = os.environ.get(DB_KEY_ENVIRONMENT_VARIABLE)
    if direct:
        return _Key(_validate_key_text(direct, DB_KEY_ENVIRONMENT_VARIABLE), DB_KEY_ENVIRONMENT_VARIABLE)
    configured = os.environ.get(KEY_FILE_ENVIRONMENT_VARIABLE)
    if configured:
        path = Path(configured).expanduser()
        check_outside_workspace(workspace, path)
        if not path.exists() and not workspace.database_path.exists():
            return None  # a new database: the key will be created at the configured path
        source = f"{KEY_FILE_ENVIRONMENT_VARIABLE}={path}"
        return _Key(_read_key_file(path, source), source)
    default = default_key_file(workspace)
    check_outside_workspace(workspace, default)
    if default.exists():
        source = f"default key file {default}"
        return _Key(_read_key_file(default, source), source)
    return None


def _new_key_path(workspace: Workspace) -> Path:
    configured = os.environ.get(KEY_FILE_ENVIRONMENT_VARIABLE)
    path = Path(configured).expanduser() if configured else default_key_file(workspace)
    check_outside_workspace(workspace, path)
    return path


def _resolve_key(workspace: Workspace, *, create: bool) -> tuple[_Key, KeyNotice | None]:
    found = _find_key(workspace)
    if found is not None:
        return found, None
    if workspace.database_path.exists() or not create:
        raise DatabaseKeyError(_missing_key_message(workspace))
    path = _new_key_path(workspace)
    text = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    try:
        _write_secret_file(path, (text + "\n").encode("ascii"))
    except FileExistsError:  # created concurrently: use it
        source = f"key file {path}"
        return _Key(_read_key_file(path, source), source), None
    except OSError as error:
        raise DatabaseKeyError(f"cannot create the database key file {path}: {error.strerror}") from error
    notice = KeyNotice(
        key_file=path,
        message=(
            f"created a new database encryption key in {path} (mode 0600). Back it up: without it the "
            f"workspace database cannot be opened. Set {KEY_FILE_ENVIRONMENT_VARIABLE} or "
            f"{DB_KEY_ENVIRONMENT_VARIABLE} to use a key kept elsewhere."
        ),
    )
    return _Key(text, f"key file {path}"), notice


def ensure_database_key(workspace: Workspace) -> KeyNotice | None:
    """Make sure a key exists for this workspace; return a notice if one was created."""
    _, notice = _resolve_key(workspace, create=True)
    return notice


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _base_connection(workspace: Workspace) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "temp_file_encryption": True,
        "temp_directory": str(Path(workspace.home) / ".tmp"),
    }
    con = duckdb.connect(":memory:", config=config)
    try:
        con.execute(f"LOAD {_sql_string(str(httpfs_extension_path()))}")
    except duckdb.Error as error:
        con.close()
        raise DatabaseError(f"cannot load the httpfs extension needed for encryption: {error}") from error
    return con


def _translate(error: duckdb.Error, workspace: Workspace, key: _Key) -> DatabaseError:
    text = str(error)
    path = workspace.database_path
    if "Wrong encryption key" in text or "without a key" in text:
        return DatabaseKeyError(
            f"refusing to start: the key from {key.source} does not open the database {path} (wrong key). "
            f"Set {DB_KEY_ENVIRONMENT_VARIABLE} or {KEY_FILE_ENVIRONMENT_VARIABLE} to the right key"
        )
    if "is not encrypted" in text:
        return DatabaseKeyError(
            f"refusing to start: the database {path} is not encrypted; taxmatch only opens encrypted databases "
            "(move it away and load the master file again)"
        )
    if isinstance(error, duckdb.IOException) and "lock" in text.lower():
        return DatabaseLockedError(
            f"the database {path} is in use by another process (DuckDB allows one writer process); "
            "stop it (e.g. `taxmatch serve`) or wait for it to finish"
        )
    return DatabaseError(f"cannot open the database {path}: {type(error).__name__}: {text}")


def open_database(workspace: Workspace, *, read_only: bool = False) -> OpenedDatabase:
    """Open the encrypted workspace database; create it (and its key) on first write use.

    Returns the connection (its default database is the workspace database, so
    unqualified table names refer to it) and a `KeyNotice` when a key was created.
    """
    path = workspace.database_path
    if read_only and not path.exists():
        raise DatabaseError(f"no database at {path} yet (nothing has been loaded into this workspace)")
    key, notice = _resolve_key(workspace, create=not read_only)
    if not read_only:
        Path(workspace.home).mkdir(parents=True, exist_ok=True)
    con = _base_connection(workspace)
    options = f"ENCRYPTION_KEY {_sql_string(key.text)}"
    if read_only:
        options += ", READ_ONLY"
    try:
        con.execute(f"ATTACH {_sql_string(str(path))} AS {DATABASE_ALIAS} ({options})")
        con.execute(f"USE {DATABASE_ALIAS}")
    except duckdb.Error as error:
        con.close()
        raise _translate(error, workspace, key) from None
    if notice is not None:
        logger.warning("%s", notice.message)
    return OpenedDatabase(con, notice)


def copy_into_snapshot(
    connection: duckdb.DuckDBPyConnection, workspace: Workspace, path: Path, tables: Sequence[str]
) -> None:
    """Copy ``tables`` of the workspace database, as of one transaction, into a new encrypted file.

    ``connection`` is a connection (a cursor) of the process that holds the database; the copy
    is encrypted with the workspace key, so `open_snapshot` opens it like the database itself.
    """
    key, _ = _resolve_key(workspace, create=False)
    alias = f"snapshot_{secrets.token_hex(6)}"
    try:
        connection.execute(f"ATTACH {_sql_string(str(path))} AS {alias} (ENCRYPTION_KEY {_sql_string(key.text)})")
    except duckdb.Error as error:
        raise _translate(error, workspace, key) from None
    try:
        connection.execute("BEGIN TRANSACTION")
        try:
            for table in tables:
                connection.execute(f'CREATE TABLE {alias}."{table}" AS SELECT * FROM {DATABASE_ALIAS}."{table}"')
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    finally:
        connection.execute(f"DETACH {alias}")


def open_snapshot(workspace: Workspace, path: Path) -> duckdb.DuckDBPyConnection:
    """Open a `copy_into_snapshot` file read-only; its tables are the default ones, as in `connect`."""
    key, _ = _resolve_key(workspace, create=False)
    con = _base_connection(workspace)
    try:
        con.execute(
            f"ATTACH {_sql_string(str(path))} AS {DATABASE_ALIAS} (ENCRYPTION_KEY {_sql_string(key.text)}, READ_ONLY)"
        )
        con.execute(f"USE {DATABASE_ALIAS}")
    except duckdb.Error as error:
        con.close()
        raise _translate(error, workspace, key) from None
    return con


def connect(workspace: Workspace, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the encrypted workspace database (see the module docstring).

    A newly created key is announced on the ``taxmatch.database`` logger; use
    `open_database` to get the `KeyNotice` and print it yourself.
    """
    return open_database(workspace, read_only=read_only).connection
