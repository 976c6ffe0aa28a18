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
from collections.abc import Callable, Hashable
from functools import lru_cache

from taxmatch.records import Address, ReasonCode
from taxmatch.settings import Policy
from taxmatch.standardize.addresses import (
    DIRECTIONALS,
    ORDINALS,
    SUFFIXES,
    _tidy,
    fold,
    house_number_class,
    normalize_city,
    normalize_state,
    normalize_zip,
    parse_street_shape,
    street_name_words,
    street_shape_key,
    zip_state,
)
from taxmatch.validate.memo import remember
from taxmatch.validate.names import placeholder_key, placeholder_keys


def _letters(text: str) -> str:
    """Letters only: an address line that reads N/A, n.a. or NA says nothing (no name is at stake)."""
    return placeholder_key(text).replace("/", "")


# Compared as letters only, like the policy's name placeholders, which count here too.
STREET_PLACEHOLDERS: frozenset[str] = frozenset(
    _letters(text)
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
    return STREET_PLACEHOLDERS | frozenset(key.replace("/", "") for key in placeholder_keys(name_placeholders))


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
    letters = _letters(text)
    return letters in placeholders or bool(_REPEATED_LETTER_RE.match(letters))


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


def _tiles(target: str, pieces: tuple[str, ...]) -> bool:
    """Whether `target` is some of `pieces` (each at most once) concatenated in some order."""
    if not target:
        return True
    return any(
        target.startswith(piece) and _tiles(target[len(piece) :], pieces[:index] + pieces[index + 1 :])
        for index, piece in enumerate(pieces)
    )


@lru_cache(maxsize=4096)
def _substrings(placeholders: frozenset[str]) -> frozenset[str]:
    return frozenset(
        key[start:end] for key in placeholders for start in range(len(key)) for end in range(start + 1, len(key) + 1)
    )


def _words_can_name_nonsense(words: tuple[str, ...], placeholders: frozenset[str]) -> bool:
    """Whether some street name `street_name_words` allows for these words is `_is_nonsense`.

    Such a name is letters (every word has some), so it is nonsense exactly when its letters,
    the chosen words concatenated, are a placeholder or one letter three or more times; or
    when it is an ordinal word's numeral and that is nonsense.
    """
    if any(word in ORDINALS and _is_nonsense(ORDINALS[word], placeholders) for word in words):
        return True
    runs: dict[str, int] = {}
    for word in words:
        if word == word[0] * len(word):
            runs[word[0]] = runs.get(word[0], 0) + len(word)
    if any(length >= 3 for length in runs.values()):
        return True
    # Only words inside some placeholder can be part of one ("N", "ST"; not "OAK").
    substrings = _substrings(placeholders)
    pieces = tuple(sorted(word for word in words if word in substrings))
    return bool(pieces) and _pieces_make_placeholder(pieces, placeholders)


@lru_cache(maxsize=4096)
def _pieces_make_placeholder(pieces: tuple[str, ...], placeholders: frozenset[str]) -> bool:
    return any(_tiles(key, pieces) for key in placeholders)


def check_address(address: Address, policy: Policy) -> list[ReasonCode]:
    return address_codes(address.street, address.city, address.state, address.zip, policy)


def address_codes(
    street_text: str | None, city_text: str | None, state_text: str | None, zip_raw: str | None, policy: Policy
) -> list[ReasonCode]:
    """`check_address` on the separate fields (the unit plays no part in validation)."""
    return list(address_rule(policy.name_placeholders)(street_text, city_text, state_text, zip_raw))


AddressRule = Callable[[str | None, str | None, str | None, str | None], tuple[ReasonCode, ...]]
# The street line's codes, then the city, state and ZIP the line itself holds (stand-ins for
# empty fields).
_StreetVerdict = tuple[tuple[ReasonCode, ...], str, str, str]

_MISSING: tuple[ReasonCode, ...] = (ReasonCode.MISSING_ADDRESS,)
_INCOMPLETE: tuple[ReasonCode, ...] = (ReasonCode.INCOMPLETE_ADDRESS,)
_INVALID: tuple[ReasonCode, ...] = (ReasonCode.INVALID_ADDRESS,)
_NO_STREET: _StreetVerdict = (_INCOMPLETE, "", "", "")
# An ASCII street field that starts with a plain house number: fold() of it is the number, one
# space, and fold() of the rest (fold only drops periods, squeezes and strips whitespace and
# upper-cases), unless the rest folds to nothing.
_ASCII_HOUSE_NUMBER_RE = re.compile(r"\s*([0-9]+)\s+(.+)", re.DOTALL)


# A few rule sets at a time: each holds memos of up to 65,536 verdicts per field.
@lru_cache(maxsize=4)
def address_rule(name_placeholders: frozenset[str]) -> AddressRule:
    """The address rule for one policy's placeholders, remembering verdicts across calls.

    Reads exactly the parts of `standardize_address` that the rules need (street name, parse
    success, and the line's own city/state/ZIP as stand-ins for empty fields), computed the same
    way but without building the rest (unit, city spelling, ZIP+4, the frozen dataclass).

    Most street lines of a batch are distinct, but their verdict does not depend on the house
    number: the placeholder test skips digit-only words, and the parse is shared by every line
    with the same rest and a number of the same `house_number_class` (`parse_street_shape`).
    So verdicts are remembered per (number class, rest of the line), and the ~5,000 distinct
    rests of 100,000 requests cost one parse each per class.
    """
    placeholders = _placeholders(name_placeholders)
    shared: dict[Hashable, _StreetVerdict] = {}
    by_line: dict[str, _StreetVerdict] = {}
    places: dict[tuple[str | None, str | None, str | None], tuple[tuple[ReasonCode, ...], bool]] = {}

    def line_verdict(line: str, key: Hashable | None) -> _StreetVerdict:
        # `line` is fold() of a street field that is not blank.
        parsed, is_shared = parse_street_shape(line)
        nonsense = (_ascii_words_nonsense if line.isascii() else _words_nonsense)(line, placeholders)
        if nonsense or (parsed.street_name and _is_nonsense(parsed.street_name, placeholders)):
            codes = _INVALID
        elif not parsed.parsed_ok:
            codes = _INCOMPLETE
        else:
            codes = ()
        verdict = (codes, parsed.city, parsed.state, parsed.zip_text)
        if is_shared and key is not None:
            return remember(shared, key, verdict)
        return remember(by_line, line, verdict)

    def street_verdict(street_text: str) -> _StreetVerdict | None:
        if street_text.isascii():
            lead = _ASCII_HOUSE_NUMBER_RE.fullmatch(street_text)
            if lead is not None:
                rest = fold(lead.group(2))
                if rest:
                    number = lead.group(1)
                    key = (house_number_class(number), rest)
                    verdict = shared.get(key)
                    return verdict if verdict is not None else verdict_of(f"{number} {rest}", key)
        if not street_text.strip():
            return None
        line = fold(street_text)
        return verdict_of(line, street_shape_key(line))

    def verdict_of(line: str, key: Hashable | None) -> _StreetVerdict:
        known = by_line.get(line) if key is None else (shared.get(key) or by_line.get(line))
        return known if known is not None else line_verdict(line, key)

    # Per rest of a house-numbered ASCII line: its codes when they are certain without a parse,
    # False when a parse must decide.
    rest_codes: dict[str, tuple[ReasonCode, ...] | bool] = {}

    def unparsed_codes(line: str) -> tuple[ReasonCode, ...] | bool:
        # Same codes as line_verdict, for a house-numbered ASCII line, or False.
        if _ascii_words_nonsense(line, placeholders):
            return _INVALID
        words = street_name_words(line)
        if words is None or _words_can_name_nonsense(words, placeholders):
            return False
        return ()

    def street_codes(street_text: str) -> tuple[ReasonCode, ...] | None:
        """The street line's codes alone (None for a blank line): its own city, state and ZIP unread."""
        if street_text.isascii():
            lead = _ASCII_HOUSE_NUMBER_RE.fullmatch(street_text)
            if lead is not None:
                rest = fold(lead.group(2))
                if rest:
                    codes = rest_codes.get(rest)
                    if codes is None:
                        # Neither the placeholder test nor street_name_words reads the number.
                        codes = remember(rest_codes, rest, unparsed_codes(f"{lead.group(1)} {rest}"))
                    if codes is not False:
                        return codes  # type: ignore[return-value]
        verdict = street_verdict(street_text)
        return None if verdict is None else verdict[0]

    def rule(
        street_text: str | None, city_text: str | None, state_text: str | None, zip_raw: str | None
    ) -> tuple[ReasonCode, ...]:
        key = (city_text, state_text, zip_raw)
        place = places.get(key)
        if place is None:
            # The line's city, state and ZIP are read only where the field is empty.
            independent = bool((city_text or "").strip() and state_text and zip_raw)
            codes = _place_codes(city_text, state_text, zip_raw, "", "", "", placeholders) if independent else ()
            place = remember(places, key, (codes, independent))
        place_codes, independent = place
        if independent:
            # A city is given, so the address is not missing.
            line_codes = street_codes(street_text) if street_text else None
            if line_codes is None:
                line_codes = _INCOMPLETE
        else:
            verdict = street_verdict(street_text) if street_text else None
            if verdict is None:
                if not ((city_text or "").strip() or (state_text or "").strip() or (zip_raw or "").strip()):
                    return _MISSING
                verdict = _NO_STREET
            line_codes, line_city, line_state, line_zip = verdict
            place_codes = _place_codes(city_text, state_text, zip_raw, line_city, line_state, line_zip, placeholders)
        if not place_codes:
            return line_codes
        return line_codes + place_codes if line_codes else place_codes

    return rule


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
