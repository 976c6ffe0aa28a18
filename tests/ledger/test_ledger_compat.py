"""Ledgers written by an older taxmatch still verify and account (the entry format is unchanged).

`data/export-5cadfc0.jsonl` was exported by taxmatch at commit 5cadfc0 from a synthetic workspace:
a 12-request batch and two command-line lookups recorded as that version recorded them (batch id
and request id `lookup`, actor `cli`, and for one the agency `cli` that `lookup` then defaulted
to); `data/export-5cadfc0.pem` is that workspace's public key.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from taxmatch.ledger.audit import verify_file
from taxmatch.ledger.export_report import report_from_export

DATA = Path(__file__).parent / "data"
EXPORT = DATA / "export-5cadfc0.jsonl"
PUBLIC_KEY = (DATA / "export-5cadfc0.pem").read_bytes()


def test_an_export_of_5cadfc0_verifies_under_the_fail_closed_rule() -> None:
    result = verify_file(EXPORT, PUBLIC_KEY)
    assert result.ok, result.problem
    assert (result.entries, result.signed_through) == (14, 14)


def test_an_export_of_5cadfc0_is_accounted_with_its_old_lookups() -> None:
    accounting = report_from_export(EXPORT, PUBLIC_KEY, datetime.date(2026, 1, 1), datetime.date(2027, 12, 31))
    assert accounting.unsigned_left_out == 0
    assert accounting.report.entries == 14
    assert accounting.report.total_by("agency") == {"ICE": 13, "cli": 1}


def test_an_edited_export_of_5cadfc0_fails(tmp_path: Path) -> None:
    edited = tmp_path / "edited.jsonl"
    edited.write_text(EXPORT.read_text(encoding="utf-8").replace('"agency":"cli"', '"agency":"CBP"'), "utf-8")
    assert not verify_file(edited, PUBLIC_KEY).ok
