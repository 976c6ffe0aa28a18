"""Name rule: first and last name present, made of letters, and not a placeholder.

Single-letter names (an initial such as 'J') are accepted: returns carry them and the
matcher, not validation, decides whether an initial is enough evidence. Any script's
letters are accepted (José, Núñez, 李); digits and other symbols are not.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy

_NON_ASCII_LETTER_RE = re.compile(r"[^A-Za-z]+")
# Characters a name may hold besides letters (and combining accents written separately).
_NAME_PUNCTUATION = frozenset(" -'’.")
# Generational and professional suffixes, compared without periods, commas or spaces.
SUFFIXES = frozenset(
    (
        "JR", "SR", "JUNIOR", "SENIOR", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X",
        "2ND", "3RD", "4TH", "5TH", "ESQ", "MD", "DO", "DDS", "PHD",
    )
)  # fmt: skip
# Government forms write these for "no middle name"; they are an absent middle name, not a bad one.
_NO_MIDDLE_NAME = frozenset({"NMN", "NMI"})


@lru_cache(maxsize=65_536)
def placeholder_key(text: str) -> str:
    """Letters only, upper case, accents folded: "Don't Care" -> 'DONTCARE', 'N/A' -> 'NA'."""
    if text.isascii():
        return _NON_ASCII_LETTER_RE.sub("", text).upper()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if char.isalpha()).upper()


@lru_cache(maxsize=64)
def placeholder_keys(placeholders: frozenset[str]) -> frozenset[str]:
    return frozenset(key for key in (placeholder_key(item) for item in placeholders) if key)


# Names repeat across a batch (Zipf), and the character scan is a Python loop.
@lru_cache(maxsize=65_536)
def is_well_formed(name: str) -> bool:
    has_letter = False
    for char in name:
        if char.isalpha():
            has_letter = True
        elif char not in _NAME_PUNCTUATION and not unicodedata.combining(char):
            return False
    return has_letter


def check_names(
    first: str | None, middle: str | None, last: str | None, suffix: str | None, policy: Policy
) -> list[ReasonCode]:
    first = (first or "").strip()
    last = (last or "").strip()
    middle = (middle or "").strip()
    suffix = (suffix or "").strip()
    codes: list[ReasonCode] = []
    if not first or not last:
        codes.append(ReasonCode.MISSING_NAME)
    placeholders = placeholder_keys(policy.name_placeholders)
    for name in (first, last):
        if name and (not is_well_formed(name) or placeholder_key(name) in placeholders):
            codes.append(ReasonCode.INVALID_NAME)
    if first and last and placeholder_key(first + last) in placeholders:
        codes.append(ReasonCode.INVALID_NAME)
    if middle:
        key = placeholder_key(middle)
        if key not in _NO_MIDDLE_NAME and (not is_well_formed(middle) or key in placeholders):
            codes.append(ReasonCode.INVALID_NAME)
    if suffix and suffix.upper().replace(".", "").replace(",", "").replace(" ", "") not in SUFFIXES:
        codes.append(ReasonCode.INVALID_NAME)
    return codes
