"""The accounting rebuilt from a ledger export (`taxmatch ledger report --file EXPORT.jsonl --public-key PEM`).

For an auditor who holds an export and the producer's public key, not the workspace. The
export is verified first (`verify_file`, against the key given, never the file's own header);
one that does not verify is refused. Only the entries a valid signed checkpoint vouches for
are accounted: an unsigned tail chains by hash, but anyone could have appended it, so it is
left out and counted in `ExportAccounting.unsigned_left_out`.

The entries are then loaded into a private in-memory database with the ledger's own schema,
and `build_report` runs over it exactly as over the workspace: one report, two sources.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from taxmatch.ledger.audit import verify_file
from taxmatch.ledger.model import ENTRY_FIELDS, LIST_FIELDS, VerifyResult
from taxmatch.ledger.report import DisclosureReport, build_report
from taxmatch.ledger.store import ENTRIES_TABLE, Ledger

__all__ = ["ExportAccounting", "ExportNotVerifiedError", "report_from_export"]


class ExportNotVerifiedError(ValueError):
    """The export does not verify against the key given (or changed while being read)."""


@dataclass(frozen=True)
class ExportAccounting:
    report: DisclosureReport
    verification: VerifyResult
    unsigned_left_out: int  # entries after the last signed checkpoint, not accounted


def _file_state(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def _signed_entries(path: Path, signed_through: int) -> tuple[pa.Table, str]:
    """The entries 1..signed_through of the export as a table, and the hash its checkpoint signed."""
    columns: dict[str, list[object]] = {name: [] for name in ENTRY_FIELDS}
    signed_head = ""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            kind = record.get("type")
            if kind == "entry" and record["seq"] <= signed_through:
                for name in ENTRY_FIELDS:
                    columns[name].append(record[name])
            elif kind == "checkpoint" and record.get("seq") == signed_through:
                signed_head = str(record.get("head_hash", ""))

    def column_type(name: str) -> pa.DataType:
        return pa.int64() if name == "seq" else pa.list_(pa.string()) if name in LIST_FIELDS else pa.string()

    schema = pa.schema([pa.field(name, column_type(name)) for name in ENTRY_FIELDS])
    return pa.table(columns, schema=schema), signed_head


def report_from_export(
    path: Path,
    public_key_pem: bytes,
    date_from: datetime.date,
    date_to: datetime.date,
    *,
    agency: str | None = None,
) -> ExportAccounting:
    """Verify ``path`` against ``public_key_pem``, then build the accounting of its signed entries."""
    path = Path(path)
    before = _file_state(path)
    result = verify_file(path, public_key_pem)
    if not result.ok:
        where = f" (line {result.line})" if result.line is not None else ""
        raise ExportNotVerifiedError(
            f"{path} does not verify: first bad entry {result.first_bad}{where}: {result.problem}; "
            "no accounting is made from it"
        )
    table, signed_head = _signed_entries(path, result.signed_through)
    if _file_state(path) != before:
        raise ExportNotVerifiedError(f"{path} changed while it was read; run the report again")
    seqs = table.column("seq").to_pylist()
    if seqs != list(range(1, result.signed_through + 1)) or (
        result.signed_through and table.column("entry_hash")[-1].as_py() != signed_head
    ):
        raise ExportNotVerifiedError(f"{path}: the entries read are not the ones verified; no accounting is made")
    con = duckdb.connect(":memory:")
    try:
        ledger = Ledger(con)
        ledger.ensure_schema()
        con.register("export_entries", table)
        con.execute(f"INSERT INTO {ENTRIES_TABLE} SELECT {', '.join(ENTRY_FIELDS)} FROM export_entries")
        con.unregister("export_entries")
        report = build_report(ledger, date_from, date_to, agency=agency)
    finally:
        con.close()
    return ExportAccounting(report, result, result.entries - result.signed_through)
