"""Name rule: first and last name present, made of letters, and not a placeholder.

Single-letter names (an initial such as 'J') are accepted: returns carry them and the
matcher, not validation, decides whether an initial is enough evidence. Any script's
letters are accepted (José, Núñez, 李); digits and other symbols are not.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy
from taxmatch.validate.memo import remember

# Letters and the slash: `N/A` is a placeholder, the Chinese given name `Na` is not, so the slash
# that makes the abbreviation must survive into the key.
_NON_ASCII_LETTER_RE = re.compile(r"[^A-Za-z/]+")
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
    """Letters (and slashes) only, upper case, accents folded: "Don't Care" -> 'DONTCARE', 'n/a' -> 'N/A'."""
    if text.isascii():
        return _NON_ASCII_LETTER_RE.sub("", text).upper()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if char.isalpha() or char == "/").upper()


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
    return list(name_rule(policy.name_placeholders)(first, middle, last, suffix))


NameRule = Callable[[str | None, str | None, str | None, str | None], tuple[ReasonCode, ...]]
# Per given or family name as written: (stripped, present, invalid, letters key if ASCII else None).
_NameVerdict = tuple[str, bool, bool, str | None]


# A few rule sets at a time: each holds memos of up to 65,536 verdicts per field.
@lru_cache(maxsize=4)
def name_rule(name_placeholders: frozenset[str]) -> NameRule:
    """The name rule for one policy's placeholders, remembering each name's verdict (names repeat)."""
    placeholders = placeholder_keys(name_placeholders)
    # The letters of first + last are those of first then last (for ASCII names), so they can be a
    # placeholder only if the first name's letters begin one.
    prefixes = frozenset(key[:end] for key in placeholders for end in range(len(key) + 1))
    given: dict[str | None, _NameVerdict] = {}
    family: dict[str | None, _NameVerdict] = {}
    middles: dict[str | None, bool] = {}
    suffixes: dict[str | None, bool] = {}

    def name_verdict(raw: str | None, memo: dict[str | None, _NameVerdict]) -> _NameVerdict:
        name = (raw or "").strip()
        key = placeholder_key(name) if name else ""
        verdict = (name, bool(name), bool(name) and (not is_well_formed(name) or key in placeholders),
                   key if name.isascii() else None)  # fmt: skip
        return remember(memo, raw, verdict)

    def middle_invalid(raw: str | None) -> bool:
        middle = (raw or "").strip()
        invalid = False
        if middle:
            key = placeholder_key(middle)
            invalid = key not in _NO_MIDDLE_NAME and (not is_well_formed(middle) or key in placeholders)
        return remember(middles, raw, invalid)

    def suffix_invalid(raw: str | None) -> bool:
        suffix = (raw or "").strip()
        invalid = bool(suffix) and suffix.upper().replace(".", "").replace(",", "").replace(" ", "") not in SUFFIXES
        return remember(suffixes, raw, invalid)

    def rule(first: str | None, middle: str | None, last: str | None, suffix: str | None) -> tuple[ReasonCode, ...]:
        first_name, has_first, bad_first, first_key = given.get(first) or name_verdict(first, given)
        last_name, has_last, bad_last, last_key = family.get(last) or name_verdict(last, family)
        bad_middle = middles.get(middle)
        if bad_middle is None:
            bad_middle = middle_invalid(middle)
        bad_suffix = suffixes.get(suffix)
        if bad_suffix is None:
            bad_suffix = suffix_invalid(suffix)
        invalid = bad_first or bad_last or bad_middle or bad_suffix
        if has_first and has_last and not invalid:
            if first_key is not None and last_key is not None:
                invalid = first_key in prefixes and first_key + last_key in placeholders
            else:
                invalid = placeholder_key(first_name + last_name) in placeholders
            if not invalid:
                return ()
        codes: list[ReasonCode] = []
        if not has_first or not has_last:
            codes.append(ReasonCode.MISSING_NAME)
        if invalid:
            codes.append(ReasonCode.INVALID_NAME)
        return tuple(codes)

    return rule
