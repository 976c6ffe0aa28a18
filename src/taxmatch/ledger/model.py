"""Ledger records and the exact bytes that are hashed and signed.

Nothing here touches a database or a file; `store`, `export` and `verify` build on it.

* An entry's hash is ``SHA-256(canonical_json(entry without entry_hash))`` as lowercase
  hex. The hashed object includes ``seq`` and ``prev_hash`` (the previous entry's hash;
  64 zeros for the first entry), so the hashes form a chain.
* ``canonical_json`` is ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)`` encoded as UTF-8.
* A checkpoint signs, with Ed25519, ``canonical_json`` of
  ``{"format": CHECKPOINT_FORMAT, "head_hash", "key_id", "seq", "signed_at"}``.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring as _escape
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from taxmatch.records import Decision, Outcome
from taxmatch.settings import Policy

LEDGER_FORMAT = "taxmatch-ledger/1"
CHECKPOINT_FORMAT = "taxmatch-ledger-checkpoint/1"
GENESIS_HASH = "0" * 64
DEFAULT_LEGAL_BASIS = "26 U.S.C. 6103(i)(2)"

# The fields of an entry, in table-column order. Every field but entry_hash is hashed.
ENTRY_FIELDS: tuple[str, ...] = (
    "seq",
    "recorded_at",
    "agency",
    "actor",
    "batch_id",
    "request_id",
    "outcome",
    "reason_codes",
    "statute",
    "legal_basis",
    "fields_disclosed",
    "taxpayer_tin",
    "policy_version",
    "model_version",
    "prev_hash",
    "entry_hash",
)
HASHED_FIELDS: tuple[str, ...] = ENTRY_FIELDS[:-1]
LIST_FIELDS: frozenset[str] = frozenset({"reason_codes", "fields_disclosed"})
# Not a request's outcome: the ledger's record that a batch's outcome files were removed
# (`taxmatch purge`, ledger/purge.py), so the accounting shows the destruction too.
PURGED = "PURGED"
_OUTCOMES: frozenset[str] = frozenset(outcome.value for outcome in Outcome) | {PURGED}

# The disclosed.csv fields that reach the agency (request_id, probability and evidence are ours).
BASE_DISCLOSED_FIELDS: tuple[str, ...] = (
    "tin_last4",
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "street",
    "unit",
    "city",
    "state",
    "zip",
    "tax_year",
)

_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), check_circular=False)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text (not ASCII-escaped)."""
    return _ENCODER.encode(value)


def body_json(values: Sequence[Any]) -> str:
    """``canonical_json`` of an entry body given as values in `HASHED_FIELDS` order.

    The same bytes as ``canonical_json(dict(zip(HASHED_FIELDS, values)))`` (a test holds
    the two together), written out by hand because it runs once per entry: ~4x faster.
    ``seq`` must be an int, the two list fields sequences of str, the rest str.
    """
    (
        seq,
        recorded_at,
        agency,
        actor,
        batch_id,
        request_id,
        outcome,
        reason_codes,
        statute,
        legal_basis,
        fields_disclosed,
        taxpayer_tin,
        policy_version,
        model_version,
        prev_hash,
    ) = values
    esc = _escape
    return (
        f'{{"actor":{esc(actor)},"agency":{esc(agency)},"batch_id":{esc(batch_id)},'
        f'"fields_disclosed":[{",".join(map(esc, fields_disclosed))}],"legal_basis":{esc(legal_basis)},'
        f'"model_version":{esc(model_version)},"outcome":{esc(outcome)},"policy_version":{esc(policy_version)},'
        f'"prev_hash":{esc(prev_hash)},"reason_codes":[{",".join(map(esc, reason_codes))}],'
        f'"recorded_at":{esc(recorded_at)},"request_id":{esc(request_id)},"seq":{int(seq)},'
        f'"statute":{esc(statute)},"taxpayer_tin":{esc(taxpayer_tin)}}}'
    )


def chain_hashes(columns: EventColumns, first_seq: int, recorded_at: str, prev_hash: str) -> list[str]:
    """The entry hashes of ``columns`` appended as entries ``first_seq``, ... after ``prev_hash``.

    Exactly `body_json` + SHA-256 per entry (a test holds them together), arranged for
    100k entries at a time: the sorted keys put the batch-wide fields first, so each entry's
    text is a head shared by all entries with its outcome and disclosed fields, then the
    previous hash, then a tail of its own; the heads are encoded once, the tails in one
    pass, and the sequential part (each hash needs the one before) is one concatenation and
    one SHA-256 an entry.
    """
    esc = _escape
    lead = (
        f'{{"actor":{esc(columns.actor)},"agency":{esc(columns.agency)},"batch_id":{esc(columns.batch_id)},'
        '"fields_disclosed":['
    )
    middle = f'],"legal_basis":{esc(columns.legal_basis)},"model_version":{esc(columns.model_version)},"outcome":'
    policy = f',"policy_version":{esc(columns.policy_version)},"prev_hash":"'
    head_keys = list(zip(columns.fields_disclosed, columns.outcomes, strict=True))
    heads = {
        (fields, outcome): f"{lead}{','.join(map(esc, fields))}{middle}{esc(outcome)}{policy}".encode()
        for fields, outcome in set(head_keys)
    }
    code_lists = {codes: ",".join(map(esc, codes)) for codes in set(columns.reason_codes)}
    statutes = {statute: esc(statute) for statute in set(columns.statutes)}
    time_text = f'],"recorded_at":{esc(recorded_at)},"request_id":'
    tails = [
        (
            f'","reason_codes":[{code_lists[codes]}{time_text}{esc(request_id)},"seq":{seq},'
            f'"statute":{statutes[statute]},"taxpayer_tin":{esc(tin)}}}'
        ).encode()
        for seq, codes, request_id, statute, tin in zip(
            range(first_seq, first_seq + len(columns)),
            columns.reason_codes,
            columns.request_ids,
            columns.statutes,
            columns.taxpayer_tins,
            strict=True,
        )
    ]
    head_of = [heads[key] for key in head_keys]
    sha256 = hashlib.sha256
    previous = esc(prev_hash)[1:-1].encode("utf-8")  # a hash needs no escaping; a damaged one would
    hashes: list[str] = []
    keep = hashes.append
    for head_bytes, tail in zip(head_of, tails, strict=True):
        digest = sha256(head_bytes + previous + tail).hexdigest()
        keep(digest)
        previous = digest.encode("ascii")
    return hashes


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_body(body: dict[str, Any]) -> str:
    """The entry hash of ``body`` (an entry's fields without ``entry_hash``)."""
    return sha256_hex(canonical_json(body))


def utc_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: ``2025-01-31T12:00:00.000000Z``."""
    if moment.tzinfo is None:
        raise ValueError("ledger clock must return a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def system_clock() -> datetime:
    return datetime.now(UTC)


def disclosed_fields(policy: Policy | None = None) -> tuple[str, ...]:
    """The fields a disclosure releases under ``policy`` (default policy: identity only)."""
    fields_ = list(BASE_DISCLOSED_FIELDS)
    if policy is not None and policy.disclose_full_tin:
        fields_[0] = "tin"
    if policy is not None and policy.disclose_phone:
        fields_.append("phone")
    return tuple(fields_)


_LOGIN_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def command_line_actor(login: str | None = None) -> str:
    """Who looked up from the command line, as the ledger records it: ``cli:<login name>``.

    An API lookup is recorded as ``api:<key id>`` and a dashboard one as ``ui:<key id>``; so the
    ledger, and the accounting made from it, names the channel and the key or person behind every
    lookup. `login` (default: this process's user) is kept to 64 letters, digits and ``._-``.
    Batches from the command line keep the plain actor ``cli``.
    """
    if login is None:
        try:
            login = getpass.getuser()
        except (OSError, KeyError):  # no user name for this uid (a bare container)
            login = f"uid{os.getuid()}"
    return "cli:" + (_LOGIN_UNSAFE.sub("_", login)[:64] or "unknown")


@dataclass(frozen=True)
class LedgerEvent:
    """What the caller accounts for: one request's outcome. The ledger adds seq, time and hashes."""

    agency: str
    batch_id: str
    request_id: str
    outcome: str
    reason_codes: tuple[str, ...] = ()
    statute: str = ""
    legal_basis: str = DEFAULT_LEGAL_BASIS
    fields_disclosed: tuple[str, ...] = ()
    taxpayer_tin: str = ""
    policy_version: str = ""
    model_version: str = ""
    actor: str = "cli"

    def __post_init__(self) -> None:
        outcome = self.outcome.value if isinstance(self.outcome, Outcome) else str(self.outcome)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "reason_codes", tuple(str(code) for code in self.reason_codes))
        object.__setattr__(self, "fields_disclosed", tuple(self.fields_disclosed))
        if outcome not in _OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(_OUTCOMES)}")
        if outcome != Outcome.DISCLOSED.value and self.taxpayer_tin:
            raise ValueError("only a DISCLOSED event names a taxpayer")
        # A PURGED event lists the files it removed in fields_disclosed (the entry has no other list of names).
        if outcome not in (Outcome.DISCLOSED.value, PURGED) and self.fields_disclosed:
            raise ValueError("only a DISCLOSED event names disclosed fields (a PURGED one the files removed)")

    @classmethod
    def from_decision(
        cls,
        decision: Decision,
        *,
        agency: str,
        batch_id: str,
        statute: str,
        policy_version: str,
        model_version: str,
        actor: str = "cli",
        legal_basis: str = DEFAULT_LEGAL_BASIS,
        policy: Policy | None = None,
    ) -> LedgerEvent:
        """The event for one `Decision`; ``policy`` decides which fields a disclosure released."""
        disclosed = decision.outcome is Outcome.DISCLOSED and decision.disclosure is not None
        return cls(
            agency=agency,
            batch_id=batch_id,
            request_id=decision.request_id,
            outcome=decision.outcome.value,
            reason_codes=tuple(code.value for code in decision.reason_codes),
            statute=statute,
            legal_basis=legal_basis,
            fields_disclosed=disclosed_fields(policy) if disclosed else (),
            taxpayer_tin=decision.disclosure.tin if disclosed and decision.disclosure is not None else "",
            policy_version=policy_version,
            model_version=model_version,
            actor=actor,
        )


@dataclass(frozen=True)
class EventColumns:
    """Many events of one append, by column: what a batch accounts for, without an object per event.

    The same entries as ``[LedgerEvent(...) for each row]`` with the six batch-wide fields
    repeated (a test holds the two together), for appends of 100k outcomes: building 100k
    `LedgerEvent`s, each checking itself, costs ~10 us an event, more than hashing it.
    The rules `LedgerEvent` enforces are checked here once per column, and the hashing
    refuses (TypeError) any value that is not a str. Lists are not copied: do not change
    them after passing them in.
    """

    agency: str
    actor: str
    batch_id: str
    legal_basis: str
    policy_version: str
    model_version: str
    request_ids: Sequence[str]
    outcomes: Sequence[str]
    reason_codes: Sequence[tuple[str, ...]]
    statutes: Sequence[str]
    fields_disclosed: Sequence[tuple[str, ...]]
    taxpayer_tins: Sequence[str]

    def __post_init__(self) -> None:
        count = len(self.request_ids)
        columns = (self.outcomes, self.reason_codes, self.statutes, self.fields_disclosed, self.taxpayer_tins)
        if any(len(column) != count for column in columns):
            raise ValueError("every column of an EventColumns needs one value per event")
        unknown = set(self.outcomes) - _OUTCOMES
        if unknown:
            raise ValueError(f"unknown outcome {sorted(map(str, unknown))[0]!r}; expected one of {sorted(_OUTCOMES)}")
        disclosed = Outcome.DISCLOSED.value
        # The rules of LedgerEvent.__post_init__, one pass each over two columns.
        if any(tin and outcome != disclosed for outcome, tin in zip(self.outcomes, self.taxpayer_tins, strict=True)):
            raise ValueError("only a DISCLOSED event names a taxpayer")
        if any(
            fields and outcome != disclosed and outcome != PURGED
            for outcome, fields in zip(self.outcomes, self.fields_disclosed, strict=True)
        ):
            raise ValueError("only a DISCLOSED event names disclosed fields (a PURGED one the files removed)")

    def __len__(self) -> int:
        return len(self.request_ids)

    def events(self) -> list[LedgerEvent]:
        """The same events one by one (for small appends and for tests)."""
        return [
            LedgerEvent(
                agency=self.agency,
                batch_id=self.batch_id,
                request_id=request_id,
                outcome=outcome,
                reason_codes=codes,
                statute=statute,
                legal_basis=self.legal_basis,
                fields_disclosed=fields,
                taxpayer_tin=tin,
                policy_version=self.policy_version,
                model_version=self.model_version,
                actor=self.actor,
            )
            for request_id, outcome, codes, statute, fields, tin in zip(
                self.request_ids,
                self.outcomes,
                self.reason_codes,
                self.statutes,
                self.fields_disclosed,
                self.taxpayer_tins,
                strict=True,
            )
        ]


@dataclass(frozen=True)
class LedgerEntry:
    """One accounted outcome as stored and exported (lists are JSON arrays on export)."""

    seq: int
    recorded_at: str
    agency: str
    actor: str
    batch_id: str
    request_id: str
    outcome: str
    reason_codes: tuple[str, ...]
    statute: str
    legal_basis: str
    fields_disclosed: tuple[str, ...]
    taxpayer_tin: str
    policy_version: str
    model_version: str
    prev_hash: str
    entry_hash: str

    def body(self) -> dict[str, Any]:
        """The hashed object: every field but ``entry_hash``."""
        return {
            "seq": self.seq,
            "recorded_at": self.recorded_at,
            "agency": self.agency,
            "actor": self.actor,
            "batch_id": self.batch_id,
            "request_id": self.request_id,
            "outcome": self.outcome,
            "reason_codes": list(self.reason_codes),
            "statute": self.statute,
            "legal_basis": self.legal_basis,
            "fields_disclosed": list(self.fields_disclosed),
            "taxpayer_tin": self.taxpayer_tin,
            "policy_version": self.policy_version,
            "model_version": self.model_version,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        return hash_body(self.body())

    def to_json_dict(self) -> dict[str, Any]:
        return {"type": "entry", **self.body(), "entry_hash": self.entry_hash}


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: bytes | str) -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        raise ValueError("not a PEM public key") from error
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the ledger had ``seq`` entries ending in ``head_hash`` at ``signed_at``."""

    seq: int
    head_hash: str
    signed_at: str
    key_id: str
    public_key: str  # PEM of the signer (informational: verify against a key you trust)
    signature: str  # base64 of the Ed25519 signature of `message()`

    def message(self) -> bytes:
        return canonical_json(
            {
                "format": CHECKPOINT_FORMAT,
                "head_hash": self.head_hash,
                "key_id": self.key_id,
                "seq": self.seq,
                "signed_at": self.signed_at,
            }
        ).encode("utf-8")

    @classmethod
    def sign(cls, signer: Ed25519PrivateKey, *, seq: int, head_hash: str, signed_at: str) -> Checkpoint:
        public = signer.public_key()
        unsigned = cls(seq, head_hash, signed_at, key_id(public), public_key_pem(public), "")
        signature = base64.b64encode(signer.sign(unsigned.message())).decode("ascii")
        return cls(seq, head_hash, signed_at, unsigned.key_id, unsigned.public_key, signature)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        try:
            signature = base64.b64decode(self.signature.encode("ascii"), validate=True)
            public_key.verify(signature, self.message())
        except (InvalidSignature, ValueError, UnicodeEncodeError):
            return False
        return True

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "type": "checkpoint",
            "seq": self.seq,
            "head_hash": self.head_hash,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signature": self.signature,
        }


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of verifying a ledger (a file or the database).

    ``first_bad`` is the seq of the first entry whose place in the chain cannot be
    vouched for (for a bad checkpoint: the seq it claims to cover); ``line`` is the
    1-based line of the export file where the problem was found (None for the
    database). ``unverified`` counts the entries after the last valid signed
    checkpoint: their hashes chain, but no signature covers them yet.
    """

    ok: bool
    entries: int
    head: str
    first_bad: int | None = None
    problem: str = ""
    line: int | None = None
    checkpoints: int = 0
    signed_through: int = 0
    unverified: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "first_bad": self.first_bad,
            "problem": self.problem,
            "line": self.line,
            "checkpoints": self.checkpoints,
            "signed_through": self.signed_through,
            "unverified": self.unverified,
            "warnings": list(self.warnings),
        }
