"""Appending, hashing, checkpoints, transactions and the database check."""

from __future__ import annotations

import hashlib
import itertools
import json
import stat
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from taxmatch.database import DatabaseKeyError, connect
from taxmatch.ledger import (
    GENESIS_HASH,
    HASHED_FIELDS,
    EventColumns,
    Ledger,
    LedgerError,
    LedgerEvent,
    canonical_json,
    export,
    export_public_key,
    signing_key,
    signing_key_path,
    verify_database,
)
from taxmatch.ledger.model import body_json, chain_hashes
from taxmatch.ledger.store import SMALL_APPEND
from taxmatch.records import Decision, Disclosure, Outcome, ReasonCode
from taxmatch.settings import Policy, Workspace

from ledger_helpers import Clock, make_events


def test_empty_ledger_head_is_genesis(ledger: Ledger) -> None:
    assert ledger.head() == (0, GENESIS_HASH)
    assert ledger.append([]) == []


def test_entries_chain_and_hash_canonical_json(ledger: Ledger) -> None:
    entries = ledger.append(make_events(3))
    assert [entry.seq for entry in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.entry_hash
    for entry in entries:
        body = entry.body()
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical_json(body) == text
        assert entry.entry_hash == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert entries[0].recorded_at == "2025-01-31T12:00:01.000000Z"
    assert ledger.head() == (3, entries[-1].entry_hash)
    more = ledger.append(make_events(2, start=3))
    assert more[0].seq == 4 and more[0].prev_hash == entries[-1].entry_hash


def test_stored_entries_read_back_identically(ledger: Ledger) -> None:
    entries = ledger.append(make_events(6))
    assert list(ledger.iter_entries()) == entries


def test_same_inputs_same_hashes(workspace: Workspace, tmp_path: Path) -> None:
    heads = []
    for name in ("a", "b"):
        con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        ledger = Ledger(con, clock=Clock())
        ledger.append(make_events(50))
        heads.append(ledger.head())
        con.close()
    assert heads[0] == heads[1]


def test_rollback_leaves_no_entries(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    ledger.append(make_events(2))
    head = ledger.head()
    with pytest.raises(RuntimeError, match="boom"), ledger.transaction():
        con.execute("CREATE TABLE outcomes (request_id VARCHAR)")
        con.execute("INSERT INTO outcomes VALUES ('r9')")
        ledger.append(make_events(5, start=2))
        assert ledger.head()[0] == 7
        raise RuntimeError("boom")
    assert ledger.head() == head
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchone() == (2,)
    tables = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'outcomes'")
    assert tables.fetchone() == (0,)
    # The next append continues the chain from the surviving head.
    entries = ledger.append(make_events(1, start=2))
    assert entries[0].seq == 3 and entries[0].prev_hash == head[1]
    assert verify_database(con, allow_unsigned_tail=True).ok


def test_transaction_commits(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    with ledger.transaction():
        ledger.append(make_events(4))
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchone() == (4,)


def test_append_does_not_commit_a_callers_transaction(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    con.execute("BEGIN TRANSACTION")
    ledger.append(make_events(3))
    con.execute("ROLLBACK")
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchone() == (0,)


def test_two_ledgers_on_one_connection_continue_one_chain(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    other = Ledger(con)
    ledger.append(make_events(2))
    other.append(make_events(2, start=2))
    ledger.append(make_events(1, start=4))
    assert [entry.seq for entry in ledger.iter_entries()] == [1, 2, 3, 4, 5]
    assert verify_database(con, allow_unsigned_tail=True).ok


def test_duplicate_seq_is_refused_by_the_table(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    ledger.append(make_events(1))
    with pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO ledger_entries SELECT * FROM ledger_entries")


def test_event_rules() -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        LedgerEvent(agency="A", batch_id="b", request_id="r", outcome="MAYBE")
    with pytest.raises(ValueError, match="only a DISCLOSED"):
        LedgerEvent(agency="A", batch_id="b", request_id="r", outcome="REJECTED", taxpayer_tin="123456789")


def test_event_from_decision_records_whose_return_and_which_fields() -> None:
    disclosure = Disclosure(
        tin_last4="6789", first_name="ANA", middle_name="", last_name="DIAZ", suffix="", street="1 MAIN ST",
        unit="", city="AUSTIN", state="TX", zip="78701", tax_year=2023, match_probability=0.9999,
        evidence="name=exact", tin="123456789", phone="5125550100",
    )  # fmt: skip
    decision = Decision("r1", Outcome.DISCLOSED, disclosure=disclosure)

    def of(decision: Decision, policy: Policy | None = None) -> LedgerEvent:
        return LedgerEvent.from_decision(
            decision, agency="ICE", batch_id="b", statute="8 U.S.C. 1326", policy_version="p", model_version="m",
            policy=policy,
        )  # fmt: skip

    event = of(decision)
    assert event.taxpayer_tin == "123456789"
    assert event.fields_disclosed[0] == "tin_last4" and "phone" not in event.fields_disclosed
    generous = Policy.from_mapping({"disclose_phone": True, "disclose_full_tin": True})
    event = of(decision, generous)
    assert event.fields_disclosed[0] == "tin" and event.fields_disclosed[-1] == "phone"
    rejected = Decision("r2", Outcome.REJECTED, reason_codes=(ReasonCode.MISSING_NAME, ReasonCode.INVALID_ZIP))
    event = of(rejected)
    assert event.reason_codes == ("MISSING_NAME", "INVALID_ZIP")
    assert event.taxpayer_tin == "" and event.fields_disclosed == ()
    assert event.legal_basis == "26 U.S.C. 6103(i)(2)"


def test_checkpoint_signs_the_head(ledger: Ledger, signer: Ed25519PrivateKey) -> None:
    ledger.append(make_events(4))
    checkpoint = ledger.checkpoint(signer)
    assert (checkpoint.seq, checkpoint.head_hash) == ledger.head()
    assert checkpoint.verify(signer.public_key())
    assert not checkpoint.verify(Ed25519PrivateKey.generate().public_key())
    assert ledger.checkpoints() == [checkpoint]


def test_signing_key_lives_next_to_the_db_key_with_0600(workspace: Workspace, tmp_path: Path) -> None:
    key = signing_key(workspace)
    path = signing_key_path(workspace)
    assert path == tmp_path / "keys" / "db.ed25519.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(workspace).public_key() == key.public_key()
    assert export_public_key(workspace).startswith(b"-----BEGIN PUBLIC KEY-----")


def test_signing_key_inside_workspace_is_refused(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAXMATCH_KEY_FILE", str(workspace.home / "db.key"))
    with pytest.raises(DatabaseKeyError, match="outside the workspace"):
        signing_key(workspace)


def test_verify_database(
    ledger: Ledger, con: duckdb.DuckDBPyConnection, signer: Ed25519PrivateKey, public_pem: bytes
) -> None:
    ledger.append(make_events(8))
    ledger.checkpoint(signer)
    ledger.append(make_events(2, start=8))
    result = verify_database(con, public_pem)
    assert not result.ok and result.first_bad == 9 and "9-10 come after the last signed checkpoint" in result.problem
    result = verify_database(con, public_pem, allow_unsigned_tail=True)
    assert result.ok and result.entries == 10 and result.head == ledger.head()[1]
    assert (result.checkpoints, result.signed_through, result.unverified) == (1, 8, 2)
    ledger.checkpoint(signer)
    assert verify_database(con, public_pem).ok
    con.execute("UPDATE ledger_entries SET taxpayer_tin = '111111111' WHERE seq = 4")
    result = verify_database(con, public_pem)
    assert not result.ok and result.first_bad == 4 and "entry 4" in result.problem


def test_verify_database_detects_deleted_rows_and_foreign_signatures(
    ledger: Ledger, con: duckdb.DuckDBPyConnection, signer: Ed25519PrivateKey, public_pem: bytes
) -> None:
    ledger.append(make_events(5))
    ledger.checkpoint(signer)
    assert verify_database(con, public_pem).ok
    other = Ed25519PrivateKey.generate()
    Ledger(con).checkpoint(other)
    result = verify_database(con, public_pem)
    assert not result.ok and "signature" in result.problem
    assert verify_database(con).ok  # only with the stored keys: weaker, and it says so
    assert verify_database(con).warnings
    con.execute("DELETE FROM ledger_checkpoints")
    ledger.checkpoint(signer)
    con.execute("DELETE FROM ledger_entries WHERE seq = 5")
    result = verify_database(con, public_pem)
    assert not result.ok and result.first_bad == 5


def test_export_file_is_private_and_holds_every_entry(
    exported: Path, con: duckdb.DuckDBPyConnection, ledger: Ledger
) -> None:
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["entries"] == 20 and lines[0]["head"] == ledger.head()[1]
    kinds = [line["type"] for line in lines[1:]]
    assert kinds.count("entry") == 20 and kinds.count("checkpoint") == 2
    assert lines[11]["type"] == "checkpoint" and lines[11]["seq"] == 10
    assert "Müller" in exported.read_text(encoding="utf-8")  # UTF-8, not escaped


def test_export_is_reproducible(exported: Path, con: duckdb.DuckDBPyConnection, public_pem: bytes) -> None:
    again = exported.with_name("again.jsonl")
    export(con, again, public_key_pem=public_pem)
    assert again.read_bytes() == exported.read_bytes()


def test_fast_body_encoder_matches_canonical_json() -> None:
    tricky = ['"', "\\", "\n\t\r\x00\x1f\x7f", "Müller Ñandú", "\u2028\u2029", "😀", "", "a/b", "\ud7ff\ue000"]
    for i, text in enumerate(tricky):
        values = [
            i * 1_000_003, text, text, "cli", "b", text, "DISCLOSED", [text, "X"], text, "26 U.S.C. 6103(i)(2)",
            [], text, "p", "m", "0" * 64,
        ]  # fmt: skip
        assert body_json(values) == canonical_json(dict(zip(HASHED_FIELDS, values, strict=True)))


# ---- the small-append path and the cached head ----------------------------------------------------


@pytest.mark.parametrize("sizes", [(1, 1, 1), (SMALL_APPEND, SMALL_APPEND + 1, 1), (SMALL_APPEND + 1, 2, 5)])
def test_small_and_large_appends_store_the_same_entries(ledger: Ledger, sizes: tuple[int, ...]) -> None:
    """Parameterized VALUES and the Arrow table store identical rows (lists, empty lists, text)."""
    returned = []
    start = 0
    for size in sizes:
        returned += ledger.append(make_events(size, start=start))
        start += size
    stored = list(ledger.iter_entries())
    assert stored == returned
    assert any(entry.reason_codes == () for entry in stored) and any(entry.fields_disclosed == () for entry in stored)
    assert all(entry.computed_hash() == entry.entry_hash for entry in stored)
    assert verify_database(ledger.con, allow_unsigned_tail=True).ok


def test_append_after_a_callers_own_rollback_chains_from_the_true_head(
    ledger: Ledger, con: duckdb.DuckDBPyConnection
) -> None:
    """The cached head is checked: an entry undone by a ROLLBACK outside `transaction()` is not chained from."""
    ledger.append(make_events(3))
    con.execute("BEGIN TRANSACTION")
    ledger.append(make_events(1, start=3))  # cached head is now seq 4 ...
    con.execute("ROLLBACK")  # ... which never happened
    ledger.append(make_events(2, start=3))
    assert [entry.seq for entry in ledger.iter_entries()] == [1, 2, 3, 4, 5]
    assert verify_database(con, allow_unsigned_tail=True).ok


def test_append_after_the_cached_head_was_replaced_rereads_it(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    """Same seq, another hash (the entry was rewritten): the head is read again, not trusted."""
    ledger.append(make_events(2))
    con.execute("DELETE FROM ledger_entries WHERE seq = 2")
    Ledger(con).append(make_events(1, start=5))  # another writer re-fills seq 2
    ledger.append(make_events(1, start=6))
    assert [entry.seq for entry in ledger.iter_entries()] == [1, 2, 3]
    assert verify_database(con, allow_unsigned_tail=True).ok


def test_a_cached_head_behind_the_table_moves_forward(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    """Entries after the cached one (another `Ledger` appended them) are chained from, not collided with."""
    ledger.append(make_events(2))
    first = next(iter(ledger.iter_entries()))
    ledger._head = (first.seq, first.entry_hash)  # as if seq 2 had been appended by someone else
    ledger.append(make_events(1, start=2))
    assert [entry.seq for entry in ledger.iter_entries()] == [1, 2, 3]
    assert verify_database(con, allow_unsigned_tail=True).ok


# ---- the columnar append (batches) -----------------------------------------------------------------

_TRICKY = ['"', "\\", "\n\t\r\x00\x1f\x7f", "Müller Ñandú", "\u2028\u2029", "😀", "", "a/b", "\ud7ff\ue000"]


def tricky_columns(count: int, start: int = 0, agency: str = "ICE") -> EventColumns:
    """Columns with every outcome, empty and repeated lists, and text that needs escaping, in every field."""
    events = make_events(count, start=start)
    text = [_TRICKY[i % len(_TRICKY)] for i in range(start, start + count)]
    return EventColumns(
        agency=agency + _TRICKY[start % len(_TRICKY)],
        actor="api:k1 " + _TRICKY[(start + 1) % len(_TRICKY)],
        batch_id="batch-" + _TRICKY[(start + 2) % len(_TRICKY)],
        legal_basis="26 U.S.C. 6103(i)(2) " + _TRICKY[(start + 3) % len(_TRICKY)],
        policy_version="p" + _TRICKY[(start + 4) % len(_TRICKY)],
        model_version="m" + _TRICKY[(start + 5) % len(_TRICKY)],
        request_ids=[event.request_id + t for event, t in zip(events, text, strict=True)],
        outcomes=[event.outcome for event in events],
        reason_codes=[
            (*event.reason_codes, t) if event.reason_codes else () for event, t in zip(events, text, strict=True)
        ],
        statutes=[event.statute + t for event, t in zip(events, text, strict=True)],
        fields_disclosed=[event.fields_disclosed for event in events],
        taxpayer_tins=[event.taxpayer_tin for event in events],
    )


def test_columnar_hashes_are_body_json_hashes() -> None:
    """`chain_hashes` is an arrangement of `body_json` + SHA-256, not another format."""
    columns = tricky_columns(40)
    previous = "ab" * 32
    expected = []
    for seq, event in enumerate(columns.events(), start=7):
        body = body_json(
            (
                seq, "2026-01-02T03:04:05.000006Z", event.agency, event.actor, event.batch_id, event.request_id,
                event.outcome, event.reason_codes, event.statute, event.legal_basis, event.fields_disclosed,
                event.taxpayer_tin, event.policy_version, event.model_version, previous,
            )
        )  # fmt: skip
        previous = hashlib.sha256(body.encode("utf-8")).hexdigest()
        expected.append(previous)
    assert chain_hashes(columns, 7, "2026-01-02T03:04:05.000006Z", "ab" * 32) == expected


def test_columnar_append_stores_what_event_appends_store(workspace: Workspace, tmp_path: Path) -> None:
    """Same events, one ledger by `append`, one by `append_columns`: identical rows, both verify."""
    rows = []
    for name, columnar in (("events", False), ("columns", True)):
        con = connect(Workspace(tmp_path / name))
        ledger = Ledger(con, clock=Clock())
        ledger.ensure_schema()
        for start, count in ((0, 3), (3, SMALL_APPEND + 5), (SMALL_APPEND + 8, 1)):
            columns = tricky_columns(count, start=start)
            with ledger.transaction():
                if columnar:
                    appended = ledger.append_columns(columns)
                    assert appended is not None and appended.last_seq - appended.first_seq + 1 == count
                    assert (appended.last_seq, appended.head_hash) == ledger.head()
                else:
                    ledger.append(columns.events())
        rows.append(con.execute("SELECT * FROM ledger_entries ORDER BY seq").fetchall())
        assert verify_database(con, allow_unsigned_tail=True).ok
        con.close()
    assert rows[0] == rows[1]
    assert len(rows[0]) == SMALL_APPEND + 9


def test_columnar_append_chains_after_event_appends_and_rolls_back(
    ledger: Ledger, con: duckdb.DuckDBPyConnection
) -> None:
    ledger.append(make_events(2))
    with pytest.raises(RuntimeError, match="boom"), ledger.transaction():
        ledger.append_columns(tricky_columns(50, start=2))
        raise RuntimeError("boom")
    assert ledger.append_columns(tricky_columns(0)) is None
    appended = ledger.append_columns(tricky_columns(50, start=2))
    assert appended is not None and (appended.first_seq, appended.last_seq) == (3, 52)
    ledger.append(make_events(1, start=60))
    assert [entry.seq for entry in ledger.iter_entries()] == list(range(1, 54))
    assert verify_database(con, allow_unsigned_tail=True).ok


def test_columnar_append_collision_is_a_ledger_error(ledger: Ledger, con: duckdb.DuckDBPyConnection) -> None:
    ledger.append(make_events(2))
    ledger._head = (1, next(iter(ledger.iter_entries())).entry_hash)
    ledger._checked_head = lambda: ledger._head  # type: ignore[method-assign]  # a writer that raced from seq 1
    with pytest.raises(LedgerError):
        ledger.append_columns(tricky_columns(40))
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchone() == (2,)


def test_event_columns_keep_the_event_rules() -> None:
    good = tricky_columns(6)
    with pytest.raises(ValueError, match="one value per event"):
        replace(good, outcomes=list(good.outcomes)[:-1])
    with pytest.raises(ValueError, match="unknown outcome"):
        replace(good, outcomes=["MAYBE", *list(good.outcomes)[1:]])
    not_disclosed = next(i for i, outcome in enumerate(good.outcomes) if outcome != "DISCLOSED")
    tins = list(good.taxpayer_tins)
    tins[not_disclosed] = "123456789"
    with pytest.raises(ValueError, match="names a taxpayer"):
        replace(good, taxpayer_tins=tins)
    fields = list(good.fields_disclosed)
    fields[not_disclosed] = ("tin_last4",)
    with pytest.raises(ValueError, match="disclosed fields"):
        replace(good, fields_disclosed=fields)
    with pytest.raises(TypeError):
        chain_hashes(replace(good, request_ids=[None, *list(good.request_ids)[1:]]), 1, "t", GENESIS_HASH)  # type: ignore[list-item]
