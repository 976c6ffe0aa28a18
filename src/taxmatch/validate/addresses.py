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
    _tidy,
    fold,
    normalize_city,
    normalize_state,
    normalize_zip,
    parse_street,
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


# Street types and directions: words that do not make a street line any more of an address.
_TYPE_WORDS = frozenset(SUFFIXES) | frozenset(DIRECTIONALS)


def _tidy_word(word: str) -> str:
    return word.strip(",;:#'\"-")


def _is_nonsense(text: str, placeholders: frozenset[str]) -> bool:
    """No letters at all, a placeholder, or a run of one letter ('XXXX')."""
    if not _LETTER_WORD_RE.search(text):
        return True
    letters = placeholder_key(text)
    return letters in placeholders or bool(_REPEATED_LETTER_RE.match(letters))


def _street_codes(street: str, street_name: str, parsed_ok: bool, placeholders: frozenset[str]) -> list[ReasonCode]:
    if not street:
        return [ReasonCode.INCOMPLETE_ADDRESS]
    folded = fold(street)
    if folded.isascii():
        if _ascii_words_nonsense(folded, placeholders):
            return [ReasonCode.INVALID_ADDRESS]
    elif _words_nonsense(folded, placeholders):
        return [ReasonCode.INVALID_ADDRESS]
    if street_name and _is_nonsense(street_name, placeholders):
        return [ReasonCode.INVALID_ADDRESS]
    if not parsed_ok:
        return [ReasonCode.INCOMPLETE_ADDRESS]
    return []


def _words_nonsense(folded: str, placeholders: frozenset[str]) -> bool:
    # Only the words matter for "Don't Care 12345": a number glued on makes it no more an address,
    # and neither does a street type or direction ("Don't Care Street 12345").
    words = [word for word in folded.split() if _LETTER_WORD_RE.search(word)]
    named = [word for word in words if _tidy_word(word) not in _TYPE_WORDS]
    # (When no word is a type or direction, `named` is `words` and was just checked.)
    return _is_nonsense(" ".join(words) or folded, placeholders) or bool(
        named and len(named) != len(words) and _is_nonsense(" ".join(named), placeholders)
    )


_ASCII_NON_LETTERS_RE = re.compile(r"[^A-Z]+")


@lru_cache(maxsize=65_536)
def _ascii_word(word: str) -> tuple[str, bool]:
    """(letters, is a street type or direction) for one word of an ASCII folded line."""
    letters = _ASCII_NON_LETTERS_RE.sub("", word)
    return letters, bool(letters) and _tidy_word(word) in _TYPE_WORDS


def _ascii_words_nonsense(folded: str, placeholders: frozenset[str]) -> bool:
    """`_words_nonsense` for an ASCII line (upper case, as fold gives it), without joining strings.

    In ASCII a word has a letter exactly when its letters-only key is non-empty, and the key of
    words joined by spaces is the keys concatenated; words without letters add nothing. So the
    key of all lettered words is the letters of the whole line.
    """
    letters = _ASCII_NON_LETTERS_RE.sub("", folded)
    if not letters or letters in placeholders or _REPEATED_LETTER_RE.match(letters):
        return True
    named: list[str] = []
    typed = False
    for word in folded.split():
        if word.isdigit():  # house numbers: no letters, and never a type word
            continue
        word_letters, is_type = _ascii_word(word)
        if is_type:
            typed = True
        elif word_letters:
            named.append(word_letters)
    if not typed or not named:
        return False
    named_letters = "".join(named)
    return named_letters in placeholders or bool(_REPEATED_LETTER_RE.match(named_letters))


def check_address(address: Address, policy: Policy) -> list[ReasonCode]:
    return address_codes(address.street, address.city, address.state, address.zip, policy)


def address_codes(
    street_text: str | None, city_text: str | None, state_text: str | None, zip_raw: str | None, policy: Policy
) -> list[ReasonCode]:
    """`check_address` on the separate fields (the unit plays no part in validation).

    Reads exactly the parts of `standardize_address` that the rules need (street name, parse
    success, and the line's own city/state/ZIP as stand-ins for empty fields), computed the same
    way but without building the rest (unit, city spelling, ZIP+4, the frozen dataclass).
    """
    street = (street_text or "").strip()
    city = (city_text or "").strip()
    state = (state_text or "").strip()
    zip_text = (zip_raw or "").strip()
    if not (street or city or state or zip_text):
        return [ReasonCode.MISSING_ADDRESS]
    placeholders = _placeholders(policy.name_placeholders)
    if street:
        # standardize_address parses fold() of the field as given; fold strips, so this is that parse.
        line = parse_street(fold(street_text or ""))
        codes = _street_codes(street, line.street_name, line.parsed_ok, placeholders)
        line_city, line_state, line_zip = line.city, line.state, line.zip_text
    else:
        codes = [ReasonCode.INCOMPLETE_ADDRESS]
        line_city = line_state = line_zip = ""

    return codes + list(_place_codes(city_text, state_text, zip_raw, line_city, line_state, line_zip, placeholders))


# City, state and ZIP come in a few thousand combinations per batch, so their verdict is cached.
@lru_cache(maxsize=65_536)
def _place_codes(
    city_text: str | None,
    state_text: str | None,
    zip_raw: str | None,
    line_city: str,
    line_state: str,
    line_zip: str,
    placeholders: frozenset[str],
) -> tuple[ReasonCode, ...]:
    city = (city_text or "").strip()
    state = (state_text or "").strip()
    zip_text = (zip_raw or "").strip()
    codes: list[ReasonCode] = []
    # The street line may carry the whole address; its parts count when the fields are empty.
    # As in standardize_address, a whitespace-only field still hides the line's own value.
    has_city = bool(city or normalize_city(city_text) or line_city)
    if city and _is_nonsense(city, placeholders):
        codes.append(ReasonCode.INVALID_ADDRESS)
    if state:
        state_code = normalize_state(state)
        has_state = True
    else:
        fallback = state_text or line_state
        standard_state = (normalize_state(fallback) or _tidy(fold(fallback))) if fallback else ""
        state_code = normalize_state(standard_state)
        has_state = bool(standard_state)
    if has_state and state_code is None:
        codes.append(ReasonCode.INVALID_ADDRESS)

    parts = normalize_zip(zip_text) if zip_text else normalize_zip(zip_raw or line_zip)
    zip5 = parts[0] if parts else ""
    has_zip = bool(zip_text or zip5)
    # zip_state is empty exactly for a ZIP not in the table (every entry has a state).
    zip_states = zip_state(zip5) if zip5 else frozenset()
    if has_zip and not zip_states:
        codes.append(ReasonCode.INVALID_ZIP)
    elif state_code and zip_states and state_code not in zip_states:
        codes.append(ReasonCode.ZIP_STATE_MISMATCH)
    if not has_zip and not (has_city and has_state):
        codes.append(ReasonCode.INCOMPLETE_ADDRESS)
    return tuple(codes)
