"""Hash-chained, signed, append-only accounting of every outcome (see docs/ledger.md).

Typical use in the pipeline, one transaction for outcome and accounting::

    ledger = Ledger(con)
    ledger.ensure_schema()
    with ledger.transaction():
        ...write outcomes...
        ledger.append([LedgerEvent.from_decision(d, agency=..., batch_id=..., statute=...,
                                                 policy_version=..., model_version=..., policy=policy)
                       for d in decisions])
    ledger.checkpoint(signing_key(workspace))   # e.g. once per batch
"""

from taxmatch.ledger.audit import ExportSummary, export, verify_database, verify_file
from taxmatch.ledger.keys import export_public_key, has_signing_key, signing_key, signing_key_path
from taxmatch.ledger.model import (
    DEFAULT_LEGAL_BASIS,
    ENTRY_FIELDS,
    GENESIS_HASH,
    HASHED_FIELDS,
    LEDGER_FORMAT,
    Checkpoint,
    EventColumns,
    LedgerEntry,
    LedgerEvent,
    VerifyResult,
    canonical_json,
    disclosed_fields,
    hash_body,
)
from taxmatch.ledger.store import CHECKPOINTS_TABLE, ENTRIES_TABLE, Appended, Ledger, LedgerError

__all__ = [
    "CHECKPOINTS_TABLE",
    "DEFAULT_LEGAL_BASIS",
    "ENTRIES_TABLE",
    "ENTRY_FIELDS",
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "LEDGER_FORMAT",
    "Appended",
    "Checkpoint",
    "EventColumns",
    "ExportSummary",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerEvent",
    "VerifyResult",
    "canonical_json",
    "disclosed_fields",
    "export",
    "export_public_key",
    "has_signing_key",
    "hash_body",
    "signing_key",
    "signing_key_path",
    "verify_database",
    "verify_file",
]
