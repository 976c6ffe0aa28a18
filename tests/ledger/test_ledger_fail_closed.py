"""Verification fails closed (issue 13 finding 8): each rewrite the old default check passed.

By default an export must have its header, hold at least one entry and be signed to its
end; the workspace database must be non-empty and signed to its end. The CLI (file and
workspace) and the library share the rule; `GET /v1/ledger/verify` is covered in tests/api.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_ledger_chain import tricky_columns
from test_ledger_cli import make_app
from typer.testing import CliRunner

from taxmatch.database import connect
from taxmatch.ledger import Ledger, canonical_json, export, hash_body, verify_database, verify_file
from taxmatch.ledger.model import HASHED_FIELDS
from taxmatch.settings import Workspace

from ledger_helpers import make_events


@pytest.fixture
def signed_export(
    tmp_path: Path, con: duckdb.DuckDBPyConnection, ledger: Ledger, signer: Ed25519PrivateKey, public_pem: bytes
) -> Path:
    """20 entries, checkpoints after 10, 15 and 20: what `taxmatch ledger export` writes."""
    for start, count in ((0, 10), (10, 5), (15, 5)):
        ledger.append(make_events(count, start=start))
        ledger.checkpoint(signer)
    out = tmp_path / "ledger.jsonl"
    export(con, out, public_key_pem=public_pem)
    return out


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    out = path.with_name("tampered.jsonl")
    out.write_text("".join(canonical_json(record) + "\n" for record in records), encoding="utf-8")
    return out


def entries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["type"] == "entry"]


def rehash(records: list[dict[str, Any]]) -> None:
    """A forger with no signing key: every entry hash recomputed, the header made to agree."""
    previous = "0" * 64
    for record in entries(records):
        record["prev_hash"] = previous
        record["entry_hash"] = previous = hash_body({name: record[name] for name in HASHED_FIELDS})
    records[0].update(entries=len(entries(records)), head=previous)


def edited_rehashed_without_checkpoints(export_path: Path) -> Path:
    records = [record for record in read(export_path) if record["type"] != "checkpoint"]
    entries(records)[6]["taxpayer_tin"] = "111223333"
    rehash(records)
    return write(export_path, records)


def truncated_with_the_header_fixed(export_path: Path) -> Path:
    records = read(export_path)
    cut = next(i for i, record in enumerate(records) if record.get("seq") == 18 and record["type"] == "entry")
    records = records[:cut]  # entries 18-20 and the checkpoint of 20 gone
    records[0].update(entries=17, head=records[-1]["entry_hash"])
    return write(export_path, records)


def forged_entry_appended(export_path: Path) -> Path:
    records = read(export_path)
    last = entries(records)[-1]
    forged = dict(last, seq=last["seq"] + 1, request_id="forged", prev_hash=last["entry_hash"])
    forged["entry_hash"] = hash_body({name: forged[name] for name in HASHED_FIELDS})
    records.append(forged)
    records[0].update(entries=forged["seq"], head=forged["entry_hash"])
    return write(export_path, records)


def empty_file(export_path: Path) -> Path:
    out = export_path.with_name("tampered.jsonl")
    out.write_bytes(b"")
    return out


TAMPERINGS = {
    "edited, re-hashed, every checkpoint deleted": (edited_rehashed_without_checkpoints, "no signed checkpoint"),
    "truncated, header count fixed": (truncated_with_the_header_fixed, "16-17 come after the last signed"),
    "forged entry appended after the last checkpoint": (forged_entry_appended, "21-21 come after the last signed"),
    "empty file": (empty_file, "the file is empty"),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_each_rewrite_fails_by_default(signed_export: Path, public_pem: bytes, name: str) -> None:
    assert verify_file(signed_export, public_pem).ok
    tamper, problem = TAMPERINGS[name]
    tampered = tamper(signed_export)
    result = verify_file(tampered, public_pem)
    assert not result.ok and problem in result.problem, result.problem
    # The header's key is no escape either (the forger kept it).
    assert not verify_file(tampered).ok


@pytest.mark.parametrize("name", TAMPERINGS)
def test_each_rewrite_fails_the_verify_command(signed_export: Path, workspace: Workspace, name: str) -> None:
    tamper, problem = TAMPERINGS[name]
    tampered = tamper(signed_export)
    result = CliRunner().invoke(make_app(workspace), ["ledger", "verify", "--file", str(tampered)])
    assert result.exit_code == 1 and "LEDGER NOT INTACT" in result.output and problem in result.output


def test_allowing_an_unsigned_tail_is_explicit_and_still_refuses_empty_or_headless_files(
    signed_export: Path, public_pem: bytes
) -> None:
    relaxed = verify_file(forged_entry_appended(signed_export), public_pem, allow_unsigned_tail=True)
    assert relaxed.ok and relaxed.unverified == 1 and relaxed.signed_through == 20
    assert not verify_file(empty_file(signed_export), public_pem, allow_unsigned_tail=True).ok
    header = read(signed_export)[0]
    header.update(entries=0, head="0" * 64)  # a header that agrees with an empty body
    header_only = write(signed_export, [header])
    result = verify_file(header_only, public_pem, allow_unsigned_tail=True)
    assert not result.ok and "no entries" in result.problem
    headless = write(signed_export, read(signed_export)[1:])
    result = verify_file(headless, public_pem, allow_unsigned_tail=True)
    assert not result.ok and result.line == 1 and "header" in result.problem


def test_the_workspace_database_fails_closed_too(workspace: Workspace, signer: Ed25519PrivateKey) -> None:
    app = make_app(workspace)
    runner = CliRunner()
    con = connect(workspace)
    ledger = Ledger(con)
    ledger.ensure_schema()
    con.close()
    empty = runner.invoke(app, ["ledger", "verify"])
    assert empty.exit_code == 1 and "no entries" in empty.output
    con = connect(workspace)
    ledger = Ledger(con)
    ledger.append(make_events(5))
    ledger.checkpoint(signer)
    con.close()
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0
    con = connect(workspace)
    Ledger(con).append(make_events(1, start=5))  # written by someone with the database key only
    con.close()
    forged = runner.invoke(app, ["ledger", "verify"])
    assert forged.exit_code == 1 and "first bad entry 6" in forged.output
    assert runner.invoke(app, ["ledger", "verify", "--allow-unsigned-tail"]).exit_code == 0
    con = connect(workspace)
    con.execute("DELETE FROM ledger_checkpoints")
    result = verify_database(con)
    con.close()
    assert not result.ok and "no signed checkpoint" in result.problem


def test_a_writer_signs_its_own_unsigned_appends_but_never_another_writers(
    con: duckdb.DuckDBPyConnection, ledger: Ledger, signer: Ed25519PrivateKey, public_pem: bytes
) -> None:
    """What `GET /v1/ledger/verify` does before verifying: the server vouches for what it wrote."""
    assert ledger.adopt_signed_head()  # the empty ledger
    ledger.append(make_events(3))
    with pytest.raises(RuntimeError), ledger.transaction():  # a rolled-back append vouches for nothing
        ledger.append(make_events(2, start=3))
        raise RuntimeError("undone")
    ledger.append_columns(tricky_columns(2, start=3))
    assert ledger.checkpoint_own_tail(signer) is not None
    assert verify_database(con, public_pem).ok
    assert ledger.checkpoint_own_tail(signer) is None  # nothing unsigned: nothing signed twice
    Ledger(con).append(make_events(1, start=5))  # another writer
    ledger.append(make_events(1, start=6))  # chained after it: the tail is not all its own
    assert ledger.checkpoint_own_tail(signer) is None
    result = verify_database(con, public_pem)
    assert not result.ok and result.first_bad == 6
    restarted = Ledger(con)
    assert not restarted.adopt_signed_head()  # an unsigned head is not adopted
    assert restarted.checkpoint_own_tail(signer) is None
