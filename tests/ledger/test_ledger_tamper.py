"""Every kind of tampering with an export is caught, naming the first bad entry.

The `exported` fixture: line 1 header; lines 2-11 entries 1-10; line 12 checkpoint(10);
lines 13-17 entries 11-15; line 18 checkpoint(15); lines 19-23 entries 16-20 (unsigned).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from taxmatch.ledger import Checkpoint, canonical_json, hash_body, verify_file
from taxmatch.ledger.model import HASHED_FIELDS, public_key_pem


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    out = path.with_name("tampered.jsonl")
    out.write_text("".join(canonical_json(record) + "\n" for record in records), encoding="utf-8")
    return out


def index_of(records: list[dict[str, Any]], seq: int, kind: str = "entry") -> int:
    return next(i for i, r in enumerate(records) if r["type"] == kind and r["seq"] == seq)


def rehash_from(records: list[dict[str, Any]], start: int) -> None:
    """What a careful forger does: recompute every entry hash from ``start`` on."""
    prev = None
    for record in records[1:]:
        if record["type"] != "entry":
            continue
        if record["seq"] >= start:
            if prev is not None:
                record["prev_hash"] = prev
            record["entry_hash"] = hash_body({name: record[name] for name in HASHED_FIELDS})
        prev = record["entry_hash"]


def test_untouched_export_with_an_unsigned_tail_verifies_only_when_that_is_allowed(
    exported: Path, public_pem: bytes
) -> None:
    refused = verify_file(exported, public_pem)
    assert not refused.ok and refused.first_bad == 16 and "--allow-unsigned-tail" in refused.problem
    result = verify_file(exported, public_pem, allow_unsigned_tail=True)
    assert result.ok, result.problem
    assert (result.entries, result.checkpoints, result.signed_through, result.unverified) == (20, 2, 15, 5)
    assert result.first_bad is None and result.problem == ""
    assert any("16-20" in warning for warning in result.warnings)


def test_header_key_is_used_when_none_given_but_flagged(exported: Path) -> None:
    result = verify_file(exported, allow_unsigned_tail=True)
    assert result.ok
    assert any("header" in warning for warning in result.warnings)


def test_edited_field_is_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    records[index_of(records, 7)]["outcome"] = "NOT_MATCHED"
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert (result.first_bad, result.line) == (7, 8)
    assert "entry 7" in result.problem and "altered" in result.problem


def test_edited_unsigned_entry_is_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    records[index_of(records, 18)]["taxpayer_tin"] = "123456789"
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok and result.first_bad == 18


def test_deleted_line_is_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    del records[index_of(records, 7)]
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert (result.first_bad, result.line) == (7, 8)
    assert "entry 7" in result.problem


def test_inserted_copy_is_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    records.insert(index_of(records, 12) + 1, dict(records[index_of(records, 3)]))
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert result.first_bad == 13 and result.line == 15
    assert "inserted" in result.problem


def test_inserted_forged_entry_with_valid_hashes_is_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    twelve = records[index_of(records, 12)]
    forged = dict(records[index_of(records, 13)])
    forged.update(request_id="forged", outcome="DISCLOSED", taxpayer_tin="111223333", prev_hash=twelve["entry_hash"])
    forged["entry_hash"] = hash_body({name: forged[name] for name in HASHED_FIELDS})
    records.insert(index_of(records, 13), forged)
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert result.first_bad == 13
    assert "twice" in result.problem


def test_swapped_lines_are_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    i = index_of(records, 7)
    records[i], records[i + 1] = records[i + 1], records[i]
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert (result.first_bad, result.line) == (7, 8)


def test_truncated_unsigned_tail_is_caught_by_the_header(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    records = records[: index_of(records, 18)]  # entries 18-20 (after the last checkpoint) cut off
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert result.first_bad == 18 and "cut off" in result.problem


def test_truncated_unsigned_tail_with_rewritten_header_is_reported_unverified(
    exported: Path, public_pem: bytes
) -> None:
    records = read(exported)
    records = records[: index_of(records, 18)]
    records[0].update(entries=17, head=records[-1]["entry_hash"])
    tampered = write(exported, records)
    refused = verify_file(tampered, public_pem)  # by default the file must be signed to its end
    assert not refused.ok and refused.first_bad == 16
    result = verify_file(tampered, public_pem, allow_unsigned_tail=True)
    # Nothing signed covers entries 16-20, so dropping some of them is not provable from the
    # file alone once an unsigned tail is allowed: the result says which entries are unverified.
    assert result.ok
    assert (result.entries, result.signed_through, result.unverified) == (17, 15, 2)
    assert any("16-17" in warning and "no signature" in warning for warning in result.warnings)


def test_truncation_removing_checkpointed_entries_is_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    records[0].update(entries=13, head=records[index_of(records, 13)]["entry_hash"])  # a careful forger
    del records[index_of(records, 14) : index_of(records, 15) + 1]  # the checkpoint(15) line stays
    del records[index_of(records, 15, "checkpoint") + 1 :]
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert result.first_bad == 14
    assert "checkpoint for entry 15" in result.problem and "14-15" in result.problem


def test_truncation_to_an_earlier_checkpoint_is_caught_by_an_expected_head(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    manifest_head = records[index_of(records, 15)]["entry_hash"]  # e.g. from a batch manifest
    records = records[: index_of(records, 10, "checkpoint") + 1]
    records[0].update(entries=10, head=records[index_of(records, 10)]["entry_hash"])
    tampered = write(exported, records)
    assert verify_file(tampered, public_pem).ok  # a prefix ending at a checkpoint is a valid ledger...
    result = verify_file(tampered, public_pem, expect_head=manifest_head)
    assert not result.ok and result.first_bad == 11  # ...unless a head known from elsewhere is missing
    assert verify_file(exported, public_pem, expect_head=manifest_head, allow_unsigned_tail=True).ok


def test_forged_checkpoint_signature_is_caught(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    checkpoint = records[index_of(records, 10, "checkpoint")]
    signature = bytearray(base64.b64decode(checkpoint["signature"]))
    signature[0] ^= 1
    checkpoint["signature"] = base64.b64encode(bytes(signature)).decode()
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert (result.first_bad, result.line) == (10, 12)
    assert "signature" in result.problem


def test_rehashed_chain_is_caught_by_the_signed_checkpoint(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    records[index_of(records, 5)]["taxpayer_tin"] = "111223333"
    rehash_from(records, 5)
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok
    assert result.first_bad == 1 and result.line == 12
    assert "re-hashed" in result.problem


def test_resigned_forgery_fails_with_the_trusted_key_only(exported: Path, public_pem: bytes) -> None:
    records = read(exported)
    records[index_of(records, 5)]["taxpayer_tin"] = "111223333"
    rehash_from(records, 5)
    forger = Ed25519PrivateKey.generate()
    for record in records:
        if record["type"] == "checkpoint":
            head = records[index_of(records, record["seq"])]["entry_hash"]
            record.update(Checkpoint.sign(forger, seq=record["seq"], head_hash=head, signed_at="x").to_json_dict())
    records[0]["public_key"] = public_key_pem(forger.public_key())
    records[0]["head"] = records[index_of(records, 20)]["entry_hash"]
    tampered = write(exported, records)
    result = verify_file(tampered, public_pem)
    assert not result.ok and result.first_bad == 10 and "signature" in result.problem
    assert verify_file(tampered, allow_unsigned_tail=True).ok  # trusting the file's own key cannot: documented


def test_malformed_lines_are_caught(exported: Path, public_pem: bytes) -> None:
    lines = exported.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4][:-5]
    broken = exported.with_name("broken.jsonl")
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = verify_file(broken, public_pem)
    assert not result.ok and (result.first_bad, result.line) == (4, 5)
    records = read(exported)
    records[index_of(records, 4)]["seq"] = "4"
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok and result.first_bad == 4
    records = read(exported)
    records[index_of(records, 4)]["extra"] = "x"
    result = verify_file(write(exported, records), public_pem)
    assert not result.ok and result.first_bad == 4 and "extra" in result.problem
