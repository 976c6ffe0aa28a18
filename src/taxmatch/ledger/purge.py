"""Remove old batch outcome files and account for each removal in the ledger (`taxmatch purge`).

What goes: each directory directly under ``<home>/batches/`` (where `batch run` writes by
default; batches written elsewhere with ``--out`` are not the workspace's to delete) that was
written more than ``older_than_days`` days before now. "Written" is the manifest's
``written_at`` (ISO 8601 with a time zone) when the manifest has one, else the directory's
modification time, which is when its last file (normally manifest.json) was put in place.
The ledger itself is never purged: it is the permanent accounting.

Each removal is one ledger entry, outcome ``PURGED``: agency and batch id of the purged
batch (from its manifest; the directory name when there is none), actor ``cli``, reason
code ``RETENTION_EXPIRED``, legal basis ``retention: outcome files older than N days``,
and in ``fields_disclosed`` the names of the files removed (nothing was disclosed; it is the
entry's only list of names). The report counts these entries under outcome ``PURGED``.

No removal without its entry, no entry without its removal: the directory is first
renamed to ``.purging-<name>`` (same file system: atomic), then the entry is committed,
then the renamed directory is deleted. If the commit fails the rename is undone. A
``.purging-*`` directory left behind (a crash after the commit) is already accounted for
and is deleted by the next purge without a second entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from taxmatch.io.outcomes import MANIFEST_FILENAME
from taxmatch.ledger.batch_explanations import forget_batches
from taxmatch.ledger.model import PURGED, Checkpoint, LedgerEntry, LedgerEvent
from taxmatch.ledger.store import Ledger

__all__ = [
    "PURGE_REASON",
    "TRASH_PREFIX",
    "PurgeCandidate",
    "PurgeResult",
    "find_expired",
    "purge_batches",
]

PURGE_REASON = "RETENTION_EXPIRED"
TRASH_PREFIX = ".purging-"

AgeSource = Literal["manifest", "mtime"]


@dataclass(frozen=True)
class PurgeCandidate:
    """A batch directory old enough to go."""

    path: Path
    batch_id: str
    agency: str
    written_at: datetime
    age_source: AgeSource  # where written_at came from
    files: tuple[str, ...]  # paths relative to the directory, sorted
    size_bytes: int


@dataclass(frozen=True)
class PurgeResult:
    older_than_days: int
    cutoff: datetime
    dry_run: bool
    purged: tuple[PurgeCandidate, ...]  # the candidates (what would go, under dry_run)
    kept: int  # batch directories younger than the cutoff
    entries: tuple[LedgerEntry, ...]  # the PURGED entries written (none under dry_run)
    checkpoint: Checkpoint | None
    leftovers_removed: int  # .purging-* directories of an interrupted earlier purge


def _read_manifest(directory: Path) -> dict[str, object]:
    try:
        data = json.loads((directory / MANIFEST_FILENAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _manifest_time(manifest: dict[str, object]) -> datetime | None:
    value = manifest.get("written_at")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # A time without a zone is ambiguous: not trusted to delete anything; the mtime decides.
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _files(directory: Path) -> tuple[tuple[str, ...], int]:
    names: list[str] = []
    size = 0
    for root, _, filenames in os.walk(directory):
        for filename in filenames:
            path = Path(root) / filename
            names.append(path.relative_to(directory).as_posix())
            with contextlib.suppress(OSError):  # a file removed meanwhile has no size to count
                size += path.lstat().st_size
    return tuple(sorted(names)), size


def _batch_dirs(batches_dir: Path) -> list[Path]:
    if not batches_dir.is_dir():
        return []
    # Symbolic links are never followed: what they point to is not the workspace's.
    return sorted(
        path
        for path in batches_dir.iterdir()
        if path.is_dir() and not path.is_symlink() and not path.name.startswith(".")
    )


def find_expired(batches_dir: Path, older_than_days: int, now: datetime) -> tuple[list[PurgeCandidate], int]:
    """(candidates older than the cutoff, count of batch directories kept)."""
    if older_than_days < 0:
        raise ValueError("--older-than must be 0 or more days")
    cutoff = now - timedelta(days=older_than_days)
    candidates: list[PurgeCandidate] = []
    kept = 0
    for directory in _batch_dirs(batches_dir):
        manifest = _read_manifest(directory)
        written_at = _manifest_time(manifest)
        source: AgeSource = "manifest"
        if written_at is None:
            written_at = datetime.fromtimestamp(directory.stat().st_mtime, UTC)
            source = "mtime"
        if written_at >= cutoff:
            kept += 1
            continue
        batch_id = manifest.get("batch_id")
        agency = manifest.get("agency")
        files, size = _files(directory)
        candidates.append(
            PurgeCandidate(
                directory,
                batch_id if isinstance(batch_id, str) and batch_id else directory.name,
                agency if isinstance(agency, str) else "",
                written_at,
                source,
                files,
                size,
            )
        )
    return candidates, kept


def _event(candidate: PurgeCandidate, older_than_days: int, actor: str) -> LedgerEvent:
    return LedgerEvent(
        agency=candidate.agency,
        batch_id=candidate.batch_id,
        request_id="",
        outcome=PURGED,
        reason_codes=(PURGE_REASON,),
        statute="",
        legal_basis=f"retention: outcome files older than {older_than_days} days",
        fields_disclosed=candidate.files,
        actor=actor,
    )


def _remove_leftovers(batches_dir: Path) -> int:
    removed = 0
    if batches_dir.is_dir():
        for path in sorted(batches_dir.glob(TRASH_PREFIX + "*")):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
                removed += 1
    return removed


def purge_batches(
    ledger: Ledger | None,
    batches_dir: Path,
    older_than_days: int,
    *,
    signer: Ed25519PrivateKey | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    actor: str = "cli",
) -> PurgeResult:
    """Remove the batch directories older than ``older_than_days``, one ledger entry each.

    ``ledger`` may be None only for ``dry_run`` (nothing is written). With ``signer`` the
    new head is signed once the purge entries are committed. ``now`` defaults to the
    ledger's clock (the system clock for a dry run).
    """
    if now is None:
        now = ledger.clock() if ledger is not None else datetime.now(UTC)
    candidates, kept = find_expired(batches_dir, older_than_days, now)
    cutoff = now - timedelta(days=older_than_days)
    if dry_run:
        return PurgeResult(older_than_days, cutoff, True, tuple(candidates), kept, (), None, 0)
    if ledger is None:
        raise ValueError("a purge that is not a dry run needs the ledger to account for it")
    leftovers = _remove_leftovers(batches_dir)
    entries: list[LedgerEntry] = []
    for candidate in candidates:
        trash = candidate.path.with_name(TRASH_PREFIX + candidate.path.name)
        os.replace(candidate.path, trash)
        try:
            with ledger.transaction():
                written = ledger.append([_event(candidate, older_than_days, actor)])
                # The candidates' TINs kept to explain its requests go with its files.
                forget_batches(ledger.con, [candidate.batch_id])
        except BaseException:
            os.replace(trash, candidate.path)  # not accounted for, so not removed
            raise
        entries += written
        shutil.rmtree(trash)
    checkpoint = ledger.checkpoint(signer) if signer is not None and entries else None
    return PurgeResult(older_than_days, cutoff, False, tuple(candidates), kept, tuple(entries), checkpoint, leftovers)
