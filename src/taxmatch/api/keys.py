"""API keys: a small JSON file in the workspace holding only SHA-256 hashes of the secrets.

The keys are deliberately *not* in the DuckDB database: the server holds the database
(one writer process) for its lifetime, and `taxmatch keys create/revoke` must work while
it runs. The server re-reads the file when it changes, so a revocation takes effect on
the next request.

A key reads ``tm_<key_id>_<secret>``: the key id (12 hex digits) names the record, the
secret (32 random bytes, urlsafe base64) is shown once and stored only as its SHA-256.
A secret of 256 random bits needs no slow hash: a fast one cannot be brute-forced.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from taxmatch.settings import Workspace

KEY_FILE_NAME = "api-keys.json"
KEY_FORMAT = 1
_KEY_PATTERN = re.compile(r"^tm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_AGENCY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
# Compared against when the key id is unknown, so an unknown id costs the same time as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"taxmatch-no-such-key").hexdigest()


class Role(enum.StrEnum):
    REQUESTER = "requester"
    AUDITOR = "auditor"
    ADMIN = "admin"


class KeyError_(ValueError):
    """A key operation cannot be done; the message says why (never contains a secret)."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    agency: str
    role: Role
    secret_sha256: str
    created: str
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["role"] = self.role.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApiKey:
        return cls(
            key_id=str(data["key_id"]),
            agency=str(data["agency"]),
            role=Role(str(data["role"])),
            secret_sha256=str(data["secret_sha256"]),
            created=str(data["created"]),
            revoked=None if data.get("revoked") is None else str(data["revoked"]),
        )


def key_file_path(workspace: Workspace) -> Path:
    return Path(workspace.home) / KEY_FILE_NAME


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def normalize_agency(agency: str) -> str:
    name = agency.strip()
    if not _AGENCY_PATTERN.match(name):
        raise KeyError_(
            "--agency must be 1-64 characters: letters, digits, space, '.', '_' or '-', starting with a letter or digit"
        )
    return name


class KeyStore:
    """Reads and writes the key file; safe across processes (flock) and threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    @classmethod
    def for_workspace(cls, workspace: Workspace) -> KeyStore:
        return cls(key_file_path(workspace))

    # ---- reading ------------------------------------------------------------------------------

    def _read_file(self) -> dict[str, ApiKey]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != KEY_FORMAT or not isinstance(data.get("keys"), list):
            raise KeyError_(f"{self.path} is not a taxmatch key file (format {KEY_FORMAT})")
        keys = (ApiKey.from_json(item) for item in data["keys"])
        return {key.key_id: key for key in keys}

    def _file_signature(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        # The inode changes on every atomic replace, so two writes within one mtime tick are still seen.
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def current(self) -> dict[str, ApiKey]:
        """The keys, re-read only when the file changed since the last call."""
        with self._lock:
            signature = self._file_signature()
            if signature != self._signature:
                self._keys = self._read_file() if signature is not None else {}
                self._signature = signature
            return self._keys

    def list(self) -> list[ApiKey]:
        return sorted(self.current().values(), key=lambda key: (key.created, key.key_id))

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key a bearer token names, or None (unknown, malformed, wrong secret or revoked)."""
        match = _KEY_PATTERN.match(token.strip())
        key_id, secret = (match.group(1), match.group(2)) if match else ("", token)
        key = self.current().get(key_id)
        expected = key.secret_sha256 if key is not None else _DUMMY_HASH
        candidate = _hash_secret(secret) if secret.isascii() else _DUMMY_HASH[::-1]
        same = hmac.compare_digest(expected, candidate)
        if key is None or not same or not key.active:
            return None
        return key

    # ---- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[dict[str, ApiKey]]:
        """Read-modify-write under an exclusive lock file, so two CLI processes never lose a key."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with lock_path.open("a") as lock_handle:
            fcntl.flock(lock_handle.fileno(), fcntl.LOCK_EX)
            try:
                keys = dict(self._read_file())
                yield keys
                self._write_file(keys)
            finally:
                fcntl.flock(lock_handle.fileno(), fcntl.LOCK_UN)

    def _write_file(self, keys: dict[str, ApiKey]) -> None:
        ordered = sorted(keys.values(), key=lambda key: (key.created, key.key_id))
        text = json.dumps({"format": KEY_FORMAT, "keys": [key.to_json() for key in ordered]}, indent=2) + "\n"
        descriptor, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise

    def create(self, agency: str, role: Role) -> tuple[ApiKey, str]:
        """A new key; returns the record and the full key text, which is never shown again."""
        name = normalize_agency(agency)
        secret = secrets.token_urlsafe(32)
        with self._exclusive() as keys:
            key_id = secrets.token_hex(6)
            while key_id in keys:
                key_id = secrets.token_hex(6)
            key = ApiKey(key_id, name, Role(role), _hash_secret(secret), _now())
            keys[key_id] = key
        return key, f"tm_{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        with self._exclusive() as keys:
            key = keys.get(key_id.strip())
            if key is None:
                raise KeyError_(f"no API key with id {key_id!r} (see `taxmatch keys list`)")
            if key.revoked is None:
                key = replace(key, revoked=_now())
                keys[key.key_id] = key
        return key
