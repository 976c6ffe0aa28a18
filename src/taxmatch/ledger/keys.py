"""The workspace's Ed25519 signing key for ledger checkpoints.

Kept under the same policy as the database key (`taxmatch.database`): outside the
workspace, next to the database key file, mode 0600 — so a copy of the workspace
does not carry the key that vouches for its ledger.

* ``TAXMATCH_KEY_FILE=/dir/name.key`` -> ``/dir/name.ed25519.pem``
* otherwise ``~/.config/taxmatch/keys/<sha256(workspace home)[:16]>.ed25519.pem``

The private key is PKCS#8 PEM (unencrypted: protect it by file permissions, or keep
the key directory on an encrypted volume). The public key is SubjectPublicKeyInfo PEM.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from taxmatch.database import DatabaseKeyError, check_outside_workspace, key_directory
from taxmatch.ledger.model import public_key_pem
from taxmatch.settings import Workspace

SIGNING_KEY_SUFFIX = ".ed25519.pem"


def signing_key_path(workspace: Workspace) -> Path:
    directory, stem = key_directory(workspace)
    path = directory / f"{stem}{SIGNING_KEY_SUFFIX}"
    check_outside_workspace(workspace, path)
    return path


def _load(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise DatabaseKeyError(
            f"refusing to start: cannot read the ledger signing key {path}: {type(error).__name__}"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DatabaseKeyError(f"refusing to start: the ledger signing key {path} is not an Ed25519 key")
    return key


def has_signing_key(workspace: Workspace) -> bool:
    return signing_key_path(workspace).exists()


def signing_key(workspace: Workspace) -> Ed25519PrivateKey:
    """Load the workspace's signing key, creating it (0600, outside the workspace) if missing."""
    path = signing_key_path(workspace)
    if path.exists():
        return _load(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created concurrently
        return _load(path)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def export_public_key(workspace: Workspace) -> bytes:
    """The PEM public key an auditor needs to verify exported ledgers offline."""
    return public_key_pem(signing_key(workspace).public_key()).encode("ascii")
