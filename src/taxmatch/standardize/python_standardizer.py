"""The SQL standardizer (`standardize.sql` + the engine's model input columns), in Python.

An on-demand lookup standardizes one request; a DuckDB statement costs milliseconds of
planning, a Python function microseconds. This module must give exactly what the SQL gives
for the same input — tests compare the two on every master row and request of a synthetic
population — so it mirrors the SQL step by step, including its order of operations.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from taxmatch.standardize.names import NAME_SUFFIXES, SURNAME_PARTICLES, given_name_forms
from taxmatch.standardize.usps import DIRECTION_STANDARDS, STREET_TOKEN_STANDARD, SUFFIX_LONG_FORMS, UNIT_DESIGNATORS

_UNIT_WORDS = "|".join(sorted((designator for designator in UNIT_DESIGNATORS if designator != "#"), key=len)[::-1])
_NOT_NAME_LETTER = re.compile(r"[^A-Z ]+")
_NOT_STREET_CHARACTER = re.compile(r"[^A-Z0-9# ]+")
_SPACES = re.compile(r"\s+")
_HOUSE_NUMBER = re.compile(r"^(\d+)")
_PO_BOX = re.compile(r"^(?:P ?O ?)?BOX ([A-Z0-9]+)")
_LEADING_HOUSE_NUMBER = re.compile(r"^\d+[A-Z]?( \d/\d)? ?")
_TRAILING_UNIT = re.compile(rf"( (?:{_UNIT_WORDS})\b| ?#).*$")
_NOT_DIGIT = re.compile(r"[^0-9]")
_UNIT_ON_STREET = re.compile(rf"(?: (?:{_UNIT_WORDS})\b| ?#) ?#? ?([A-Z0-9]+)$")
_UNIT_DESIGNATOR = re.compile(rf"^(?:(?:{_UNIT_WORDS})\b)? ?#? ?")
_NOT_ALPHANUMERIC = re.compile(r"[^A-Z0-9]")


def unit(unit_text: str | None, street_text: str | None) -> str:
    """tm_unit: the unit's identifier (APT 4B, #4B, UNIT 4B -> 4B), from the unit field or the street line."""
    from_field = _NOT_ALPHANUMERIC.sub("", _UNIT_DESIGNATOR.sub("", clean_street(unit_text), count=1))
    return from_field or _first_group(_UNIT_ON_STREET, clean_street(street_text))


def _strip_accents_upper(text: str) -> str:
    """DuckDB's strip_accents(upper(x)): canonical decomposition, combining marks dropped."""
    decomposed = unicodedata.normalize("NFD", text.upper())
    return "".join(character for character in decomposed if not unicodedata.combining(character))


def fold_name(text: str | None) -> str:
    """tm_fold_name."""
    folded = _strip_accents_upper(text or "").replace("-", " ").replace("'", "").replace(".", "")
    return _SPACES.sub(" ", _NOT_NAME_LETTER.sub(" ", folded)).strip(" ")


def clean_street(text: str | None) -> str:
    """tm_clean_street."""
    cleaned = _strip_accents_upper(text or "").replace(".", "")
    return _SPACES.sub(" ", _NOT_STREET_CHARACTER.sub(" ", cleaned)).strip(" ")


def _first_group(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    return found.group(1) if found else ""


def street_core(text: str | None) -> str:
    """tm_street_core."""
    without_number = _LEADING_HOUSE_NUMBER.sub("", clean_street(text), count=1)
    return _TRAILING_UNIT.sub("", without_number, count=1).strip(" ")


def street_name(core: str) -> str | None:
    """street_name_sql for one street core."""
    tokens = [token for token in core.split(" ") if token]
    if not tokens:
        return None
    return " ".join(STREET_TOKEN_STANDARD.get(token, token) for token in tokens)


def street_parts(core: str) -> tuple[str | None, str | None, str | None, str | None]:
    """street_name_sql's street_line, street_dirs, street_type and street_bare for one street core."""
    tokens = [token for token in core.split(" ") if token]
    standards = [STREET_TOKEN_STANDARD.get(token) for token in tokens]
    if not tokens:
        return None, None, None, None
    last_position = len(tokens) - 1
    line_words = [
        SUFFIX_LONG_FORMS[standard] if position == last_position and standard is not None else token
        for position, (token, standard) in enumerate(zip(tokens, standards, strict=True))
        if standard not in DIRECTION_STANDARDS
    ]
    if not line_words:  # nothing but directionals: they are the name then
        line_words = [standard or token for token, standard in zip(tokens, standards, strict=True)]
    line = "".join(line_words)
    directions = " ".join(standard for standard in standards if standard in DIRECTION_STANDARDS)
    last = standards[-1]
    street_type = last if last is not None and last not in DIRECTION_STANDARDS else ""
    name_words = [
        token for token, standard in zip(tokens, standards, strict=True) if standard not in DIRECTION_STANDARDS
    ]
    if len(name_words) == 1:
        # One word besides directionals names the street, even a word that is also a suffix.
        return name_words[0], _nonempty(directions), None, name_words[0]
    last_is_suffix = bool(street_type)
    bare = "".join(
        token
        for position, (token, standard) in enumerate(zip(tokens, standards, strict=True))
        if standard not in DIRECTION_STANDARDS and not (position == last_position and last_is_suffix)
    )
    return _nonempty(line), _nonempty(directions), _nonempty(street_type), _nonempty(bare)


def name_skeleton(folded: str) -> str:
    """The transliteration skeleton of each word of a folded name (one function for both paths).

    Pinyin initials to Wade-Giles (ZHANG/CHANG, XU/HSU), any initial vowel alike (UMAR/OMAR),
    common digraphs, then the consonants after the first letter with repeats collapsed
    (MOHAMMED, MUHAMMAD, MOHAMED -> MHMD; HUSSEIN, HUSAIN -> HSN).
    """
    return " ".join(_word_skeleton(word) for word in folded.split(" ") if word)


_TRANSLIT_TABLE = str.maketrans("CQZX", "KKSS")
_NOT_CONSONANT_AFTER_FIRST = re.compile(r"[AEIOUYW]")


_VOWELS = frozenset("AEIOUY")


def _word_skeleton(word: str) -> str:
    for initial, replacement in (("ZH", "CH"), ("X", "HS"), ("Q", "CH")):
        if word.startswith(initial):
            word = replacement + word[len(initial) :]
    # An initial vowel is the least stable letter across scripts (Umar/Omar, Ibrahim/Ebrahim).
    if word[:1] in _VOWELS:
        word = "*" + word[1:]
    word = re.sub("CK|KH", "K", word.replace("PH", "F")).translate(_TRANSLIT_TABLE)
    consonants = word[:1] + _NOT_CONSONANT_AFTER_FIRST.sub("", word[1:])
    kept = (character for index, character in enumerate(consonants) if index == 0 or character != consonants[index - 1])
    return "".join(kept)


def _suffix(compact: str) -> str:
    """tm_suffix."""
    return NAME_SUFFIXES.get(compact, compact)


def _nonempty(text: str) -> str | None:
    return text or None


def standardize_row(
    first_name: str | None,
    middle_name: str | None,
    last_name: str | None,
    suffix: str | None,
    dob: str | None,
    tin: str | None,
    street: str | None,
    unit_text: str | None,
    city: str | None,
    state: str | None,
    zip_code: str | None,
) -> dict[str, Any]:
    """The model input columns and block keys the SQL computes for one row (with first_forms)."""
    cleaned = clean_street(street)
    house = _first_group(_HOUSE_NUMBER, cleaned)
    box = _first_group(_PO_BOX, cleaned)
    is_po_box = house == "" and box != ""
    core = street_core(street)
    name_of_street = "PO BOX" if is_po_box else _nonempty(street_name(core) or "")
    line, directions, street_type, bare = ("POBOX", None, None, "POBOX") if is_po_box else street_parts(core)
    first = _nonempty(fold_name(first_name))
    last = _nonempty(fold_name(last_name))
    tokens = [token for token in fold_name(last_name).split(" ") if token and token not in SURNAME_PARTICLES]
    row: dict[str, Any] = {
        "first_name": first,
        "first_skeleton": _nonempty(name_skeleton(first)) if first else None,
        "last_skeleton": _nonempty(name_skeleton(last)) if last else None,
        "middle_initial": _nonempty(fold_name(middle_name)[:1]),
        "last_name": last,
        "surname_tokens": tokens,
        "suffix": _nonempty(_suffix((suffix or "").replace(".", "").replace(" ", "").upper())),
        "dob": _nonempty(dob or ""),
        "tin": _nonempty(_NOT_DIGIT.sub("", tin or "")),
        "house_number": _nonempty(house) or _nonempty(box),
        "street_name": name_of_street,
        "street_line": line,
        "street_bare": bare,
        "street_dirs": directions,
        "street_type": street_type,
        "unit": _nonempty(unit(unit_text, street)),
        "zip5": _nonempty(_NOT_DIGIT.sub("", zip_code or "")[:5]),
        "city": _nonempty(fold_name(city)),
        "state": _nonempty((state or "").strip(" ").upper()),
    }
    row["first_forms"] = list(given_name_forms(first)) if first else None
    # Whether the given name is one someone has: the engine answers it from the master's names
    # (`DuckDBEngine.attest_given_names`); alone, a row cannot know.
    row["first_attested"] = False
    return row
