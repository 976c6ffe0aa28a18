"""Which batches the ledger has recorded, and whether their outcome files are in place.

`taxmatch batch run` commits its ledger entries and a row of ``batch_runs`` in one
transaction (status ``recorded``), then puts its outcome files in place and marks the row
``complete``. So a batch id is one of:

* unknown: nothing of it is final; a run records it;
* ``recorded``: accounted for, its files perhaps not (yet) in place, e.g. a run killed between
  the commit and the rename: running the same command again finishes it, adding no entry;
* ``complete``: refused, unless re-run on purpose (``--rerun``), which records a *new* batch
  whose id is the repeated one's followed by ``-r<N>`` (`rerun_batch_id`). The id is in
  every ledger entry of the re-run, hashed and signed, so the ledger itself names the batch
  a re-run repeats; the manifest says it again (``repeats``).

The row also keeps the batch's manifest (its outcome files' hashes, ledger head) and where
the files go, which is all a finishing run needs. Entries appended by a taxmatch older than
this table have no row: a batch id with entries in the ledger counts as complete.

A run writes its files first into a staging directory beside the target. Those files hold
personal data, so every staging directory is noted in ``batch_staging`` (committed) before it
is made, and forgotten once its files are in place or removed. A run killed before its ledger
commit leaves one noted: `purge_stale_staging`, called by the next `batch run` and `master load`
(each holds the workspace database, so no other run is writing one), deletes every noted
directory and every ``.*.staging`` under ``<home>/batches/``, except those of ``recorded``
batches, which a run of the same command finishes from them.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from taxmatch.ledger.store import ENTRIES_TABLE, Ledger

__all__ = [
    "BATCH_RUNS_TABLE",
    "STAGING_TABLE",
    "BatchRun",
    "BatchRuns",
    "purge_stale_staging",
    "repeated_batch_id",
    "rerun_batch_id",
]

BATCH_RUNS_TABLE: Final = "batch_runs"
RunStatus = Literal["recorded", "complete"]
_RERUN_SUFFIX: Final = re.compile(r"^(?P<original>.+)-r(?P<number>[1-9][0-9]*)$")

SCHEMA_SQL: Final = f"""CREATE TABLE IF NOT EXISTS {BATCH_RUNS_TABLE} (
    batch_id VARCHAR PRIMARY KEY,
    repeats VARCHAR,
    agency VARCHAR NOT NULL,
    out_dir VARCHAR NOT NULL,
    staging_dir VARCHAR NOT NULL,
    manifest_json VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    recorded_at VARCHAR NOT NULL
)"""


STAGING_TABLE: Final = "batch_staging"
STAGING_SQL: Final = f"""CREATE TABLE IF NOT EXISTS {STAGING_TABLE} (
    staging_dir VARCHAR PRIMARY KEY,
    batch_id VARCHAR NOT NULL
)"""
# How `pipeline.staging_directory` names a staging directory (".<target name>.<batch id>.staging").
STAGING_GLOB: Final = ".*.staging"


def rerun_batch_id(original: str, number: int) -> str:
    """The id of the `number`th re-run (1, 2, ...) of batch `original`."""
    if number < 1:
        raise ValueError("re-runs are numbered from 1")
    return f"{original}-r{number}"


def repeated_batch_id(batch_id: str) -> str | None:
    """The batch a re-run's id names (`rerun_batch_id`), or None for a first run."""
    found = _RERUN_SUFFIX.match(batch_id)
    return found.group("original") if found else None


@dataclass(frozen=True)
class BatchRun:
    batch_id: str
    repeats: str | None
    agency: str
    out_dir: Path
    staging_dir: Path
    manifest: dict[str, Any]
    status: RunStatus
    recorded_at: str


class BatchRuns:
    """The ``batch_runs`` table, on the ledger's connection (so a row commits with the entries)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.con = ledger.con

    def ensure_schema(self) -> None:
        self.ledger.ensure_schema()
        self.con.execute(SCHEMA_SQL)
        self.con.execute(STAGING_SQL)

    def note_staging(self, batch_id: str, staging_dir: Path) -> None:
        """Note a staging directory before it is made (outside any transaction: committed at once)."""
        self.con.execute(f"INSERT OR REPLACE INTO {STAGING_TABLE} VALUES (?, ?)", [str(staging_dir), batch_id])

    def forget_staging(self, staging_dir: Path) -> None:
        self.con.execute(f"DELETE FROM {STAGING_TABLE} WHERE staging_dir = ?", [str(staging_dir)])

    def stale_staging(self, batches_dir: Path) -> list[Path]:
        """Staging directories no run will use: noted or under `batches_dir`, of no ``recorded`` batch."""
        noted = {Path(str(row[0])) for row in self.con.execute(f"SELECT staging_dir FROM {STAGING_TABLE}").fetchall()}
        if batches_dir.is_dir():
            noted.update(path for path in batches_dir.glob(STAGING_GLOB) if path.is_dir() and not path.is_symlink())
        needed = {
            Path(str(row[0]))
            for row in self.con.execute(
                f"SELECT staging_dir FROM {BATCH_RUNS_TABLE} WHERE status <> 'complete'"
            ).fetchall()
        }
        return sorted(noted - needed)

    def get(self, batch_id: str) -> BatchRun | None:
        row = self.con.execute(
            f"SELECT batch_id, repeats, agency, out_dir, staging_dir, manifest_json, status, recorded_at "
            f"FROM {BATCH_RUNS_TABLE} WHERE batch_id = ?",
            [batch_id],
        ).fetchone()
        if row is None:
            return None
        status: RunStatus = "complete" if row[6] == "complete" else "recorded"
        return BatchRun(
            str(row[0]), None if row[1] is None else str(row[1]), str(row[2]), Path(str(row[3])),
            Path(str(row[4])), json.loads(str(row[5])), status, str(row[7]),
        )  # fmt: skip

    def is_accounted(self, batch_id: str) -> bool:
        """Whether the ledger holds any entry of `batch_id` (recorded with or without a row here)."""
        found = self.con.execute(f"SELECT 1 FROM {ENTRIES_TABLE} WHERE batch_id = ? LIMIT 1", [batch_id]).fetchone()
        return found is not None or self.get(batch_id) is not None

    def latest_rerun(self, original: str) -> tuple[int, BatchRun | None]:
        """How many re-runs of `original` the ledger knows, and the last of them (if it has a row).

        Counted from the ids themselves, so entries without a row (an older taxmatch) count too.
        """
        number = 0
        while self.is_accounted(rerun_batch_id(original, number + 1)):
            number += 1
        return number, self.get(rerun_batch_id(original, number)) if number else None

    def record(self, run: BatchRun) -> None:
        """Insert the row; call it inside the transaction that appends the batch's entries."""
        self.con.execute(
            f"INSERT INTO {BATCH_RUNS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run.batch_id,
                run.repeats,
                run.agency,
                str(run.out_dir),
                str(run.staging_dir),
                json.dumps(run.manifest, sort_keys=True),
                run.status,
                run.recorded_at,
            ],
        )

    def mark_complete(self, batch_id: str) -> None:
        self.con.execute(f"UPDATE {BATCH_RUNS_TABLE} SET status = 'complete' WHERE batch_id = ?", [batch_id])


def purge_stale_staging(runs: BatchRuns, batches_dir: Path) -> list[Path]:
    """Delete the staging directories of runs killed before their ledger commit; the ones deleted.

    Call only while holding the workspace database for writing (no other run is staging then).
    Nothing in them was accounted for or final: the ledger never named their files.
    """
    removed: list[Path] = []
    for staging_dir in runs.stale_staging(batches_dir):
        existed = staging_dir.exists()
        shutil.rmtree(staging_dir, ignore_errors=True)
        if staging_dir.exists():
            continue  # kept noted: tried again next time
        runs.forget_staging(staging_dir)
        if existed:
            removed.append(staging_dir)
    return removed
