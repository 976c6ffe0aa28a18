"""Export the ledger as JSONL and verify a ledger (an export file or the database).

Export format (``taxmatch-ledger/1``), one JSON object a line, UTF-8:

1. a header: ``{"type":"header","format":"taxmatch-ledger/1","hash":"sha256","genesis":"000…",
   "entries":N,"head":"<hash of entry N>","public_key":"<PEM>","key_id":"…"}``;
2. every entry in seq order: ``{"type":"entry", <the 15 hashed fields>, "entry_hash":"…"}``;
3. every checkpoint right after the entry it covers (seq 0 checkpoints right after the
   header): ``{"type":"checkpoint","seq","head_hash","signed_at","key_id","public_key","signature"}``.

The header is *not* signed: its ``entries``/``head`` catch a careless truncation and its
public key is a convenience. An auditor should verify against a public key obtained
independently (``taxmatch ledger public-key`` on the producing system, handed over
out of band): `verify_file(path, public_key_pem)`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from json.encoder import encode_basestring as _escape
from pathlib import Path
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from taxmatch.ledger.model import (
    ENTRY_FIELDS,
    GENESIS_HASH,
    HASHED_FIELDS,
    LEDGER_FORMAT,
    Checkpoint,
    VerifyResult,
    body_json,
    canonical_json,
    key_id,
    load_public_key,
)
from taxmatch.ledger.model import public_key_pem as _pem_of
from taxmatch.ledger.store import Ledger

_ENTRY_KEYS = frozenset(ENTRY_FIELDS) | {"type"}
_CHECKPOINT_KEYS = frozenset({"type", "seq", "head_hash", "signed_at", "key_id", "public_key", "signature"})


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    entries: int
    head: str
    checkpoints: int


def header_line(entries: int, head: str, public_key: str | None) -> dict[str, Any]:
    header: dict[str, Any] = {
        "type": "header",
        "format": LEDGER_FORMAT,
        "hash": "sha256",
        "genesis": GENESIS_HASH,
        "entries": entries,
        "head": head,
    }
    if public_key:
        key = load_public_key(public_key)
        header["public_key"] = public_key
        header["key_id"] = key_id(key)
    return header


def export(con: duckdb.DuckDBPyConnection, out: Path, *, public_key_pem: bytes | None = None) -> ExportSummary:
    """Write the whole ledger (as of now) to ``out`` as JSONL, mode 0600, atomically.

    The file holds full TINs of disclosed taxpayers: treat it as the ledger itself.
    The header's public key is ``public_key_pem`` or, if None, the latest checkpoint's.
    """
    ledger = Ledger(con)
    seq, head = ledger.head()
    checkpoints = ledger.checkpoints(through=seq)
    key_text = (
        public_key_pem.decode("ascii") if public_key_pem else (checkpoints[-1].public_key if checkpoints else None)
    )
    by_seq: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        by_seq.setdefault(checkpoint.seq, []).append(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    encode = canonical_json
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(encode(header_line(seq, head, key_text)) + "\n")
            for checkpoint in by_seq.get(0, ()):
                handle.write(encode(checkpoint.to_json_dict()) + "\n")
            buffer: list[str] = []
            for row in ledger.iter_rows(through=seq):
                buffer.append(entry_line(row))
                for checkpoint in by_seq.get(row[0], ()):
                    buffer.append(encode(checkpoint.to_json_dict()))
                if len(buffer) >= 10_000:
                    handle.write("\n".join(buffer) + "\n")
                    buffer.clear()
            if buffer:
                handle.write("\n".join(buffer) + "\n")
        os.replace(temporary, out)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return ExportSummary(out, seq, head, len(checkpoints))


def entry_line(row: tuple[Any, ...]) -> str:
    """The export line of one entry row: type and entry_hash first, then the hashed body."""
    return f'{{"type":"entry","entry_hash":{_escape(row[15])},{body_json(row[:15])[1:]}'


class _Failure(Exception):
    def __init__(self, first_bad: int | None, problem: str, line: int | None) -> None:
        super().__init__(problem)
        self.first_bad = first_bad
        self.problem = problem
        self.line = line


def _where(line: int | None) -> str:
    return f" (line {line})" if line is not None else ""


class _ChainVerifier:
    """Walks entries and checkpoints in ledger order; raises `_Failure` at the first problem."""

    def __init__(self, trusted_key: Ed25519PublicKey | None, key_source: str, expect_head: str | None) -> None:
        self.trusted_key = trusted_key
        self.key_source = key_source
        self.expect_head = expect_head
        self.seen_expected_head = expect_head is None
        self.last_seq = 0
        self.prev_hash = GENESIS_HASH
        self.last_line: int | None = None
        self.checkpoints = 0
        self.signed_through = 0
        self.warnings: list[str] = []

    def entry(self, record: dict[str, Any], line: int | None) -> None:
        expected = self.last_seq + 1
        if record.keys() != _ENTRY_KEYS:
            missing = sorted(_ENTRY_KEYS - set(record))
            extra = sorted(set(record) - _ENTRY_KEYS)
            raise _Failure(
                expected,
                f"entry{_where(line)} is malformed: missing {missing or 'none'}, extra {extra or 'none'}",
                line,
            )
        seq = record["seq"]
        if (
            type(seq) is not int
            or type(record["reason_codes"]) is not list
            or type(record["fields_disclosed"]) is not list
        ):
            raise _Failure(expected, f"entry{_where(line)} is malformed: a field has the wrong type", line)
        try:  # body_json accepts only str for the other fields and list items
            text = body_json([record[name] for name in HASHED_FIELDS])
        except TypeError:
            raise _Failure(expected, f"entry{_where(line)} is malformed: a field has the wrong type", line) from None
        if seq != expected:
            if seq > expected:
                problem = (
                    f"expected entry {expected}{_where(line)} but found entry {seq}: "
                    f"entries {expected}-{seq - 1} are missing or out of order"
                )
                raise _Failure(expected, problem, line)
            if seq == self.last_seq:
                raise _Failure(seq, f"entry {seq} appears twice{_where(line)}: an entry was inserted", line)
            problem = (
                f"expected entry {expected}{_where(line)} but found entry {seq}: "
                "an entry was inserted, repeated or moved"
            )
            raise _Failure(expected, problem, line)
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != record["entry_hash"]:
            raise _Failure(seq, f"entry {seq}{_where(line)} does not match its entry_hash: it was altered", line)
        if record["prev_hash"] != self.prev_hash:
            previous = f"entry {self.last_seq}" if self.last_seq else "the genesis hash"
            raise _Failure(
                seq,
                f"entry {seq}{_where(line)}: prev_hash does not match {previous}: "
                "the chain is broken (an entry was inserted, replaced or re-hashed)",
                line,
            )
        self.last_seq = seq
        self.prev_hash = record["entry_hash"]
        self.last_line = line
        if not self.seen_expected_head and self.prev_hash == self.expect_head:
            self.seen_expected_head = True

    def checkpoint(self, checkpoint: Checkpoint, line: int | None) -> None:
        where = f"checkpoint for entry {checkpoint.seq}{_where(line)}"
        if checkpoint.seq > self.last_seq:
            raise _Failure(
                self.last_seq + 1,
                f"{where} follows entry {self.last_seq}: entries {self.last_seq + 1}-{checkpoint.seq} "
                "it signed are missing",
                line,
            )
        if checkpoint.seq < self.last_seq:
            raise _Failure(
                checkpoint.seq + 1, f"{where} follows entry {self.last_seq}: it was moved or entries inserted", line
            )
        if checkpoint.head_hash != self.prev_hash:
            first = self.signed_through + 1
            raise _Failure(
                first,
                f"{where} signs a different hash than entry {checkpoint.seq} has: entries {first}-{checkpoint.seq} "
                "were altered and re-hashed",
                line,
            )
        key = self.trusted_key
        if key is None:
            try:
                key = load_public_key(checkpoint.public_key)
            except ValueError:
                raise _Failure(checkpoint.seq, f"{where} carries no valid public key", line) from None
            note = "no trusted public key given: checkpoint signatures were checked against their own embedded key"
            if note not in self.warnings:
                self.warnings.append(note)
        if not checkpoint.verify(key):
            raise _Failure(
                checkpoint.seq,
                f"{where} has a signature that does not verify with the {self.key_source}: forged or altered",
                line,
            )
        self.checkpoints += 1
        self.signed_through = checkpoint.seq

    def failed(self, failure: _Failure) -> VerifyResult:
        return VerifyResult(
            ok=False,
            entries=self.last_seq,
            head=self.prev_hash,
            first_bad=failure.first_bad,
            problem=failure.problem,
            line=failure.line,
            checkpoints=self.checkpoints,
            signed_through=self.signed_through,
            unverified=self.last_seq - self.signed_through,
            warnings=tuple(self.warnings),
        )

    def finish(self) -> VerifyResult:
        if not self.seen_expected_head:
            return self.failed(
                _Failure(
                    self.last_seq + 1,
                    f"the expected head {self.expect_head} is not the hash of any entry: "
                    "entries were removed or the ledger was rewritten",
                    None,
                )
            )
        unverified = self.last_seq - self.signed_through
        if unverified:
            if self.checkpoints:
                self.warnings.append(
                    f"entries {self.signed_through + 1}-{self.last_seq} come after the last signed checkpoint: "
                    "their hashes chain, but no signature vouches for them"
                )
            else:
                self.warnings.append("no signed checkpoint: nothing but the hash chain vouches for these entries")
        return VerifyResult(
            ok=True,
            entries=self.last_seq,
            head=self.prev_hash,
            checkpoints=self.checkpoints,
            signed_through=self.signed_through,
            unverified=unverified,
            warnings=tuple(self.warnings),
        )


def _checkpoint_from(record: dict[str, Any], line: int, expected: int) -> Checkpoint:
    if set(record) != _CHECKPOINT_KEYS:
        raise _Failure(expected, f"checkpoint (line {line}) is malformed", line)
    seq = record["seq"]
    texts = [record[name] for name in ("head_hash", "signed_at", "key_id", "public_key", "signature")]
    if not isinstance(seq, int) or isinstance(seq, bool) or not all(isinstance(text, str) for text in texts):
        raise _Failure(expected, f"checkpoint (line {line}) is malformed", line)
    return Checkpoint(seq, *texts)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8", newline="\n") as handle:
        for number, text in enumerate(handle, start=1):
            yield number, text.rstrip("\n")


def verify_file(
    path: Path,
    public_key_pem: bytes | None = None,
    *,
    expect_head: str | None = None,
    allow_unsigned_tail: bool = False,
) -> VerifyResult:
    """Verify an export offline, with only a public key.

    ``public_key_pem`` is the key you trust. Without it the header's key is used,
    which is weaker: whoever rewrote the file could have replaced that key and
    re-signed. ``expect_head`` is an entry hash known from elsewhere (a batch
    manifest's ledger head): the file must contain it.

    Fails closed: the file must start with its header, hold at least one entry and be
    signed to its end (a valid checkpoint of its last entry); ``allow_unsigned_tail``
    accepts entries after the last checkpoint (reported in ``unverified``).
    """
    trusted: Ed25519PublicKey | None = None
    warnings: list[str] = []
    if public_key_pem is not None:
        trusted = load_public_key(public_key_pem)
    verifier = _ChainVerifier(trusted, "given public key", expect_head)
    header: dict[str, Any] | None = None
    try:
        for number, text in _lines(Path(path)):
            expected = verifier.last_seq + 1
            try:
                record = json.loads(text)
            except ValueError:
                raise _Failure(expected, f"line {number} is not JSON", number) from None
            if not isinstance(record, dict):
                raise _Failure(expected, f"line {number} is not a JSON object", number)
            kind = record.get("type")
            if number == 1 and kind != "header":
                # The header's count is what catches a cut-off end: an export without one is refused.
                raise _Failure(None, "line 1 is not the export header: an export starts with its header", 1)
            if kind == "entry":
                verifier.entry(record, number)
            elif kind == "checkpoint":
                verifier.checkpoint(_checkpoint_from(record, number, expected), number)
            elif kind == "header" and number == 1:
                header = record
                if record.get("format") != LEDGER_FORMAT:
                    raise _Failure(None, f"line 1: unknown format {record.get('format')!r}", 1)
                declared = record.get("entries")
                if type(declared) is not int or not isinstance(record.get("head"), str):
                    raise _Failure(None, "line 1: the header lacks its entry count or head hash", 1)
                key_text = record.get("public_key")
                if isinstance(key_text, str) and key_text:
                    if trusted is None:
                        try:
                            verifier.trusted_key = load_public_key(key_text)
                        except ValueError:
                            raise _Failure(None, "line 1: the header's public key is not valid", 1) from None
                        verifier.key_source = "public key in the file's header"
                        warnings.append(
                            "checked against the public key in the file's own header; pass the producer's "
                            "public key (--public-key) for a check that does not trust the file"
                        )
                    elif key_text.strip() != _pem_of(trusted).strip():
                        warnings.append("the header's public key differs from the given one; the given key was used")
            else:
                raise _Failure(expected, f"line {number}: unexpected record type {kind!r}", number)
        if header is None:
            raise _Failure(None, "the file is empty: an export has a header and at least one entry", None)
    except _Failure as failure:
        result = verifier.failed(failure)
        return _with_warnings(result, warnings)
    result = verifier.finish()
    if result.ok and header is not None:
        declared = header.get("entries")
        if isinstance(declared, int) and declared != result.entries:
            if declared > result.entries:
                problem = (
                    f"the file ends after entry {result.entries} but its header says {declared} entries: "
                    f"entries {result.entries + 1}-{declared} were cut off"
                )
            else:
                problem = f"the header says {declared} entries but the file has {result.entries}"
            first = min(declared, result.entries) + 1
            return _with_warnings(verifier.failed(_Failure(first, problem, None)), warnings)
        if declared == result.entries and header.get("head") != result.head:
            problem = f"the header's head hash does not match entry {result.entries}"
            return _with_warnings(verifier.failed(_Failure(result.entries, problem, None)), warnings)
    return _with_warnings(_signed_to_the_end(result, allow_unsigned_tail), warnings)


def _signed_to_the_end(result: VerifyResult, allow_unsigned_tail: bool) -> VerifyResult:
    """The fail-closed rule shared by the file and the database: not empty, and signed to its end.

    Whoever can write the ledger can re-hash the chain, so the hashes alone vouch for
    nothing: an entry counts only when a signed checkpoint covers it.
    """
    if not result.ok:
        return result
    if result.entries == 0:
        problem = "the ledger has no entries: there is nothing a signature vouches for"
        return replace(result, ok=False, first_bad=1, problem=problem)
    if result.unverified and not allow_unsigned_tail:
        first = result.signed_through + 1
        if result.checkpoints:
            problem = (
                f"entries {first}-{result.entries} come after the last signed checkpoint (entry "
                f"{result.signed_through}): no signature vouches for them (appended, or their checkpoint "
                "removed); --allow-unsigned-tail accepts them"
            )
        else:
            problem = (
                f"no signed checkpoint: no signature vouches for entries {first}-{result.entries} "
                "(checkpoints removed, or never taken); --allow-unsigned-tail accepts them"
            )
        return replace(result, ok=False, first_bad=first, problem=problem)
    return result


def _with_warnings(result: VerifyResult, warnings: Iterable[str]) -> VerifyResult:
    extra = tuple(warnings)
    if not extra:
        return result
    return VerifyResult(
        ok=result.ok,
        entries=result.entries,
        head=result.head,
        first_bad=result.first_bad,
        problem=result.problem,
        line=result.line,
        checkpoints=result.checkpoints,
        signed_through=result.signed_through,
        unverified=result.unverified,
        warnings=extra + result.warnings,
    )


def verify_database(
    con: duckdb.DuckDBPyConnection,
    public_key_pem: bytes | None = None,
    *,
    expect_head: str | None = None,
    allow_unsigned_tail: bool = False,
) -> VerifyResult:
    """Verify the ledger tables in ``con`` (for ``GET /v1/ledger/verify``: ok, entries, head).

    Pass the workspace's public key (`export_public_key`); without it each checkpoint
    is checked against the key stored with it, which a database writer could replace.
    The same fail-closed rule as `verify_file`: not empty, signed to its end unless
    ``allow_unsigned_tail``.
    """
    ledger = Ledger(con)
    trusted = load_public_key(public_key_pem) if public_key_pem is not None else None
    verifier = _ChainVerifier(trusted, "workspace public key", expect_head)
    by_seq: dict[int, list[Checkpoint]] = {}
    for checkpoint in ledger.checkpoints():
        by_seq.setdefault(checkpoint.seq, []).append(checkpoint)
    try:
        for checkpoint in by_seq.pop(0, []):
            verifier.checkpoint(checkpoint, None)
        for row in ledger.iter_rows():
            record = dict(zip(ENTRY_FIELDS, row, strict=True))
            record["type"] = "entry"
            verifier.entry(record, None)
            for checkpoint in by_seq.pop(row[0], []):
                verifier.checkpoint(checkpoint, None)
        for seq in sorted(by_seq):
            for checkpoint in by_seq[seq]:
                verifier.checkpoint(checkpoint, None)
    except _Failure as failure:
        return verifier.failed(failure)
    return _signed_to_the_end(verifier.finish(), allow_unsigned_tail)
