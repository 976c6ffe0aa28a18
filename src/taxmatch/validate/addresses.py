"""Address rule: a deliverable previous address, checked against the real ZIP table.

Code choices, applied in this order for the street line (at most one of them):
  * no street line (but other parts given)      -> INCOMPLETE_ADDRESS
  * placeholder or nonsense ("Don't Care 12345", "Unknown", "N/A", "xxx", digits only,
    "123 Unknown St")                             -> INVALID_ADDRESS
  * real words but no house number + street name and no PO box ("Main Street") -> INCOMPLETE_ADDRESS
Then, independently: a bad state or a placeholder city -> INVALID_ADDRESS; a ZIP that is
malformed or not in the table -> INVALID_ZIP; a real ZIP outside a valid given state ->
ZIP_STATE_MISMATCH; neither a ZIP nor city and state -> INCOMPLETE_ADDRESS.
"""

from __future__ import annotations

import re
from functools import lru_cache

from taxmatch.records import Address, ReasonCode
from taxmatch.settings import Policy
from taxmatch.standardize.addresses import (
    DIRECTIONALS,
    SUFFIXES,
    StandardAddress,
    fold,
    normalize_state,
    normalize_zip,
    standardize_address,
    zip_exists,
    zip_state,
)
from taxmatch.validate.names import placeholder_key, placeholder_keys

# Compared as letters only (see `placeholder_key`), like the policy's name placeholders,
# which count here too.
STREET_PLACEHOLDERS: frozenset[str] = frozenset(
    placeholder_key(text)
    for text in (
        "UNKNOWN", "UNK", "NONE", "N/A", "NULL", "NIL", "TEST", "XXX", "DON'T CARE", "DO NOT CARE",
        "DONT KNOW", "ANY", "ANYWHERE", "NOWHERE", "NO ADDRESS", "NO FIXED ADDRESS", "HOMELESS",
        "TBD", "REDACTED", "BLANK", "NOT APPLICABLE", "NOT AVAILABLE", "NOT KNOWN", "ADDRESS",
        "STREET", "SAME", "SAME AS ABOVE", "WHATEVER", "FAKE", "ASDF", "QWERTY", "TEST ADDRESS",
        "NO STREET", "MISSING", "NOT PROVIDED", "DECLINED", "REFUSED",
    )
)  # fmt: skip


@lru_cache(maxsize=64)
def _placeholders(name_placeholders: frozenset[str]) -> frozenset[str]:
    return STREET_PLACEHOLDERS | placeholder_keys(name_placeholders)


_LETTER_WORD_RE = re.compile(r"[^\W\d_]")
_REPEATED_LETTER_RE = re.compile(r"^([A-Z])\1{2,}$")


def _tidy_word(word: str) -> str:
    return word.strip(",;:#'\"-")


def _is_nonsense(text: str, placeholders: frozenset[str]) -> bool:
    """No letters at all, a placeholder, or a run of one letter ('XXXX')."""
    if not _LETTER_WORD_RE.search(text):
        return True
    letters = placeholder_key(text)
    return letters in placeholders or bool(_REPEATED_LETTER_RE.match(letters))


def _street_codes(street: str, standard: StandardAddress, placeholders: frozenset[str]) -> list[ReasonCode]:
    if not street:
        return [ReasonCode.INCOMPLETE_ADDRESS]
    folded = fold(street)
    # Only the words matter for "Don't Care 12345": a number glued on makes it no more an address,
    # and neither does a street type or direction ("Don't Care Street 12345").
    words = [word for word in folded.split() if _LETTER_WORD_RE.search(word)]
    named = [word for word in words if _tidy_word(word) not in SUFFIXES and _tidy_word(word) not in DIRECTIONALS]
    if _is_nonsense(" ".join(words) or folded, placeholders) or (named and _is_nonsense(" ".join(named), placeholders)):
        return [ReasonCode.INVALID_ADDRESS]
    if standard.street_name and _is_nonsense(standard.street_name, placeholders):
        return [ReasonCode.INVALID_ADDRESS]
    if not standard.parsed_ok:
        return [ReasonCode.INCOMPLETE_ADDRESS]
    return []


def check_address(address: Address, policy: Policy) -> list[ReasonCode]:
    street = (address.street or "").strip()
    city = (address.city or "").strip()
    state = (address.state or "").strip()
    zip_text = (address.zip or "").strip()
    if not (street or city or state or zip_text):
        return [ReasonCode.MISSING_ADDRESS]
    standard = standardize_address(address)
    placeholders = _placeholders(policy.name_placeholders)
    codes = _street_codes(street, standard, placeholders)

    # The street line may carry the whole address; its parts count when the fields are empty.
    has_city = bool(city or standard.city)
    if city and _is_nonsense(city, placeholders):
        codes.append(ReasonCode.INVALID_ADDRESS)
    state_code = normalize_state(state or standard.state)
    has_state = bool(state or standard.state)
    if has_state and state_code is None:
        codes.append(ReasonCode.INVALID_ADDRESS)

    zip5 = ""
    if zip_text:
        parts = normalize_zip(zip_text)
        zip5 = parts[0] if parts else ""
    else:
        zip5 = standard.zip5
    has_zip = bool(zip_text or zip5)
    if has_zip and not (zip5 and zip_exists(zip5)):
        codes.append(ReasonCode.INVALID_ZIP)
    elif zip5 and state_code and state_code not in zip_state(zip5):
        codes.append(ReasonCode.ZIP_STATE_MISMATCH)
    if not has_zip and not (has_city and has_state):
        codes.append(ReasonCode.INCOMPLETE_ADDRESS)
    return codes
