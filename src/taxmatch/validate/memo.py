"""Bounded memos for the validation rules: a batch repeats statutes, dates, names and street shapes."""

from __future__ import annotations

from typing import TypeVar

# Verdicts remembered per field value at most; a full memo is cleared, not evicted one by one.
MEMO_LIMIT = 65_536

Key = TypeVar("Key")
Verdict = TypeVar("Verdict")


def remember(memo: dict[Key, Verdict], key: Key, verdict: Verdict) -> Verdict:
    """Store `verdict` under `key` (clearing the memo first if it is full) and return it."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = verdict
    return verdict
