"""Every comparison level, declared once: its label, its SQL, its Python twin, its m prior and its
role in the decision rule.

The SQL condition is what Splink fits and what the batch query scores with; the Python twin is the
same condition with SQL's NULL semantics (a comparison with NULL is not true), for the on-demand
path, which scores a handful of pairs in microseconds instead of planning a query; a test holds the
two to each other on every pair of a synthetic batch. The m prior is how often a request and the
return of the same person land on the level. The roles are what `match.decide` reads: which name
levels agree, which address levels corroborate. From `COMPARISONS` come `match.model`'s Splink
comparisons, `M_PRIORS`, `PYTHON_LEVELS`, `COMPARISON_SHAPE` and decide's level sets, so a new level
is one row here.

Left is the request (or one of its prior addresses), right a filed return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

# The columns the address comparison reads.
ADDRESS_COLUMNS: tuple[str, ...] = (
    "house_number", "street_name", "street_line", "street_bare", "street_dirs", "street_type", "unit", "zip5", "city",
    "state",
)  # fmt: skip

# A street line (folded, no spaces: `SIDAWAYSTREET`) at least this long may carry two keying errors.
LONG_STREET_LINE = 10
# A house number has about this many numbers one keying error away (a digit changed, two swapped,
# one dropped or added): the chance agreement of `house_typo` is this many times that of a shared street.
HOUSE_NUMBER_NEIGHBOURS = 30
ADDRESS_PLACE_AGREES = "(zip5_l = zip5_r OR (city_l = city_r AND state_l = state_r))"
# Where the house number differs (house_typo, street_only) the place is all that ties the street to
# this one: the same ZIP, or the same city, keyed right or one typo off (Jaro-Winkler >= 0.9), in the
# same state or with the state left out on one side (`port augusta` with no state).
STATES_COMPATIBLE = "(state_l IS NULL OR state_r IS NULL OR state_l = state_r)"
STREET_PLACE_AGREES = f"(zip5_l = zip5_r OR (jaro_winkler_similarity(city_l, city_r) >= 0.9 AND {STATES_COMPATIBLE}))"
# Two streets written out, neither of them a PO box (whose number is no house number).
BOTH_STREETS_WRITTEN = (
    "(street_line_l IS NOT NULL AND street_line_r IS NOT NULL"
    " AND street_line_l <> 'POBOX' AND street_line_r <> 'POBOX')"
)
# One street name with another suffix or directional (Oak Ct and Oak St, N and S Main St), also
# with the suffix glued on (Orchardst and Orchard Ave): one side's line starts with the other's name.
SIBLING_STREETS = (
    "(coalesce(street_line_l = street_line_r OR starts_with(street_line_l, street_bare_r)"
    " OR starts_with(street_line_r, street_bare_l), false))"
)
# A unit on only one side is compatible (it is often left off); two different units are two doors.
UNITS_COMPATIBLE = "(unit_l IS NULL OR unit_r IS NULL OR unit_l = unit_r)"
# A directional on only one side is compatible (`3077 Elm Pl` for `3077 E Elm Pl`); N and S are two streets.
DIRECTIONS_COMPATIBLE = "(street_dirs_l IS NULL OR street_dirs_r IS NULL OR street_dirs_l = street_dirs_r)"
# Two street types that both parsed (CT, ST) and differ are two streets; a type that did not parse
# (`srteet`, a suffix glued to the name) leaves it to the line.
TYPES_COMPATIBLE = "(street_type_l IS NULL OR street_type_r IS NULL OR street_type_l = street_type_r)"
# The whole street line compared without spaces (`macneilplace`, `tasman p lace`, `crispcir cuit`)
# and folded (suffixes long, directionals apart): one keying error, or two in a long line.
# A suffix written on one side only (`309 Maple` for `309 Maple St`): the lines then compare without
# it (street_bare) as well; written on both sides, it must agree (TYPES_COMPATIBLE).
ONE_TYPE_LEFT_OUT = "((street_type_l IS NULL) <> (street_type_r IS NULL))"


def _lines_close_sql(column: str) -> str:
    return (
        f"damerau_levenshtein({column}_l, {column}_r) <= CASE WHEN least(length({column}_l),"
        f" length({column}_r)) >= {LONG_STREET_LINE} THEN 2 ELSE 1 END"
    )


STREET_LINE_CLOSE = (
    f"({DIRECTIONS_COMPATIBLE} AND {TYPES_COMPATIBLE} AND ({_lines_close_sql('street_line')}"
    f" OR ({ONE_TYPE_LEFT_OUT} AND {_lines_close_sql('street_bare')})))"
)
# A suffix glued to the name in its short form (`5thave`, `Orchardst`, `Las PalmasCt`) leaves no
# suffix on that side: its line is the other side's bare line and suffix (`5TH` || `AVE`).
_SUFFIX_GLUED = (
    "(street_type_l IS NULL AND street_line_l = street_bare_r || street_type_r"
    " OR street_type_r IS NULL AND street_line_r = street_bare_l || street_type_l)"
)
STREET_LINE_SAME = (
    f"((street_line_l = street_line_r OR ({ONE_TYPE_LEFT_OUT} AND (street_bare_l = street_bare_r"
    f" OR {_SUFFIX_GLUED}))) AND {DIRECTIONS_COMPATIBLE})"
)
SAME_STREET = f"({STREET_LINE_SAME} OR {STREET_LINE_CLOSE})"
# A typo in the street's name, never another street: the house number and the street type (its
# last word: ST, CT, ...) must agree, so 12 Oak Ct is not 12 Oak St, and so must directionals
# written on both sides (100 N Main St is not 100 S Main St).
SAME_BUILDING = (
    "house_number_l = house_number_r AND (jaro_winkler_similarity(street_name_l, street_name_r) >= 0.88"
    f" AND string_split(street_name_l, ' ')[-1] = string_split(street_name_r, ' ')[-1] OR {STREET_LINE_CLOSE})"
    f" AND {DIRECTIONS_COMPATIBLE} AND {ADDRESS_PLACE_AGREES}"
)
# The same house number of the same street, but the place was keyed wrong: a ZIP one keying error
# away, the same or a misspelt city (Jaro-Winkler at least 0.9), or the same state.
PLACE_CLOSE = (
    "(damerau_levenshtein(zip5_l, zip5_r) <= 1 OR jaro_winkler_similarity(city_l, city_r) >= 0.9 OR state_l = state_r)"
)
# Given and family name swapped, one of them possibly with a typo (`masvn caitlin` for Caitlin Mason,
# `shepherd jaxk` for Jack Shepherd: a short name's one keying error is below Jaro-Winkler 0.9).
NAMES_SWAPPED = (
    "(first_name_l = last_name_r AND (last_name_l = first_name_r"
    " OR jaro_winkler_similarity(last_name_l, first_name_r) >= 0.9"
    " OR damerau_levenshtein(last_name_l, first_name_r) <= 1))"
    " OR (last_name_l = first_name_r AND (jaro_winkler_similarity(first_name_l, last_name_r) >= 0.9"
    " OR damerau_levenshtein(first_name_l, last_name_r) <= 1))"
)
# Gabriel/Gabriela, Daniel/Danielle, Antonio/Antonia: one letter or ending apart, and two people.
# The shorter name must be a given name someone has (`first_attested`): ZAR for ZARA, BLAK for BLAKE
# and EMM for EMMA are a last letter dropped, not another person's name.
# A level of its own, ahead of `nickname` and `fuzzy` (the nickname table links Daniel and
# Danielle, Jaro-Winkler finds them close), so they are never taken for one name.
# An A added to a name that already ends in A (ROSA/ROSAA, LISA/LISAA) is a doubled key, not an
# ending: no given name pairs that way, so it is left to the typo levels.
GENDERED_ENDINGS = ("A", "E", "LE", "NE", "INE", "ETTE", "IA", "NA", "LA")
_ENDINGS_SQL = ", ".join(f"'{ending}'" for ending in GENDERED_ENDINGS)
_LONGER_BY_AN_ENDING = (
    "(starts_with(first_name_{a}, first_name_{b})"
    # list_contains, not IN: DuckDB plans an IN list over a column as a join over every pair.
    " AND list_contains([" + _ENDINGS_SQL + "], substr(first_name_{a}, length(first_name_{b}) + 1))"
    " AND NOT (substr(first_name_{b}, -1) = 'A' AND substr(first_name_{a}, length(first_name_{b}) + 1) = 'A'))"
)
GENDER_VARIANT = (
    "("
    + _LONGER_BY_AN_ENDING.format(a="l", b="r")
    + " AND first_attested_r)"
    + " OR ("
    + _LONGER_BY_AN_ENDING.format(a="r", b="l")
    + " AND first_attested_l)"
    + " OR (length(first_name_l) = length(first_name_r) AND length(first_name_l) > 2"
    " AND substr(first_name_l, 1, length(first_name_l) - 1) = substr(first_name_r, 1, length(first_name_r) - 1)"
    " AND list_sort([substr(first_name_l, -1), substr(first_name_r, -1)]) = ['A', 'O'])"
)

# One keying error (a neighbouring key, two letters swapped, one dropped or doubled) that
# Jaro-Winkler scores below 0.9 because the name is short (SNITH/SMITH, MQRIA/MARIA: 0.88-0.89).
# The first letter must agree (it is the one least often mistyped, and Mary/Gary, Dana/Lana are
# two names), and the longer name needs five letters: among four-letter names one edit joins too
# many distinct names (Mark/Mary, John/Joan, Eric/Erin).
TYPO_MIN_LENGTH = 5


def one_edit_apart_sql(column: str) -> str:
    """`damerau_levenshtein(l, r) <= 1`, behind a cheap condition that every such pair meets.

    One edit (a substitution, two neighbours swapped, one character added or dropped) touches at
    most two neighbouring characters, so in strings of nine or more characters the first four or
    the last four are untouched. Most pairs of dates of birth or TINs fail that at once, and the
    edit distance, a tenth of a batch query's time, is computed only for the rest. Same verdicts
    (tests/match/test_model_sql.py), so Splink and the Python twin need nothing new.
    """
    guard = (
        f"length({column}_l) < 9 OR length({column}_r) < 9 OR left({column}_l, 4) = left({column}_r, 4)"
        f" OR right({column}_l, 4) = right({column}_r, 4)"
    )
    return f"(({guard}) AND damerau_levenshtein({column}_l, {column}_r) <= 1)"


def _one_keying_error_sql(column: str) -> str:
    return (
        f"damerau_levenshtein({column}_l, {column}_r) <= 1"
        f" AND substr({column}_l, 1, 1) = substr({column}_r, 1, 1)"
        f" AND greatest(length({column}_l), length({column}_r)) >= {TYPO_MIN_LENGTH}"
    )


# A short given name one keying error from the other side's (SMA/SAM, NDE/NED, LARY/LARA) is a typo
# when one of the two is no given name anyone has (`first_attested`: a name of the master file or
# of the nickname tables); when both are (MARK/MARY, JOHN/JOAN) they are two names. A single letter
# is an initial, not a typo.
SHORT_GIVEN_NAME_TYPO = (
    "damerau_levenshtein(first_name_l, first_name_r) <= 1"
    " AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)"
    " AND least(length(first_name_l), length(first_name_r)) >= 2"
    " AND NOT (first_attested_l AND first_attested_r)"
)


# A given name written with a space or without it: the same name.
GIVEN_NAME_SPACED = "replace(first_name_l, ' ', '') = replace(first_name_r, ' ', '')"


# Two keying errors in a given name (`Rogcrto` for Roberto, `Jucly` for Judy, `Taars` for Tara) that
# no other level calls agreement. Not where both sides are given names someone has: twins share a
# surname, a birth date and an address, and their names are often this close (Mark and Mary, Ella
# and Emma). The first letter must agree, and both names need four letters: two edits rewrite a
# shorter name. It agrees only with an exact date of birth or TIN (`match.decide`).
def _given_names_keyed_apart_sql(minimum_length: int) -> str:
    return (
        f"least(length(first_name_l), length(first_name_r)) >= {minimum_length}"
        " AND NOT (first_attested_l AND first_attested_r)"
        " AND damerau_levenshtein(replace(first_name_l, ' ', ''), replace(first_name_r, ' ', '')) <= 2"
    )


GIVEN_NAME_TWO_KEYING_ERRORS = (
    f"substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1) AND {_given_names_keyed_apart_sql(4)}"
)
# The same, the first letter keyed wrong as well (`Jegan` for Megan, `Ouis` for Luis, `Rnark` for
# Mark), names of three letters or more: agreement only beside a TIN that agrees exactly, which no
# twin shares; a relative's TIN copied onto the request comes with the relative's name, a real one.
GIVEN_NAME_KEYED_APART = _given_names_keyed_apart_sql(3)


# A middle name moved into the given name (request MARIA, middle GUADALUPE; return MARIA GUADALUPE
# with another middle name): the request's middle initial is the initial of the other side's second
# given word. Weak agreement, never a conflict.
MIDDLE_IN_GIVEN = (
    "(middle_initial_l = substr(split_part(first_name_r, ' ', 2), 1, 1)"
    " OR middle_initial_r = substr(split_part(first_name_l, ' ', 2), 1, 1))"
)

# Given names that share a form (Bob/Robert; a compound name's first word: Maria Guadalupe/Maria).
# Two compound names that differ are two people even when their first words agree (Juan Carlos and
# Juan Pablo are brothers; Korean Ji-yeon and Ji-hoon a couple): their first words are no form of
# each other, so the level needs at least one side of a single word.
NICKNAME = (
    'array_length(list_intersect("first_forms_l", "first_forms_r")) >= 1'
    " AND NOT (contains(first_name_l, ' ') AND contains(first_name_r, ' '))"
)

# TINs are unique per taxpayer, so chance agreement is set, not estimated: random sampling would
# rarely see two returns of one TIN and could leave u at zero.
TIN_NEIGHBOURS = 9 * 9 + 8  # one digit changed, or two adjacent digits swapped


# ---- the Python twins ------------------------------------------------------------------------------
Side = Mapping[str, Any]


def _equal(left: Any, right: Any) -> bool:
    return left is not None and right is not None and left == right


def _jaro_winkler_at_least(left: str | None, right: str | None, threshold: float) -> bool:
    return left is not None and right is not None and JaroWinkler.similarity(left, right) >= threshold


def _place_agrees(left: Side, right: Side) -> bool:
    return _equal(left["zip5"], right["zip5"]) or (
        _equal(left["city"], right["city"]) and _equal(left["state"], right["state"])
    )


def _compatible(left: str | None, right: str | None) -> bool:
    return left is None or right is None or left == right


def _street_place_agrees(left: Side, right: Side) -> bool:
    return _equal(left["zip5"], right["zip5"]) or (
        _jaro_winkler_at_least(left["city"], right["city"], 0.9) and _compatible(left["state"], right["state"])
    )


def _one_type_left_out(left: Side, right: Side) -> bool:
    return (left["street_type"] is None) != (right["street_type"] is None)


def _suffix_glued(untyped: Side, typed: Side) -> bool:
    return (
        untyped["street_type"] is None
        and typed["street_bare"] is not None
        and typed["street_type"] is not None
        and _equal(untyped["street_line"], typed["street_bare"] + typed["street_type"])
    )


def _street_line_same(left: Side, right: Side) -> bool:
    same = _equal(left["street_line"], right["street_line"]) or (
        _one_type_left_out(left, right)
        and (
            _equal(left["street_bare"], right["street_bare"])
            or _suffix_glued(left, right)
            or _suffix_glued(right, left)
        )
    )
    return same and _compatible(left["street_dirs"], right["street_dirs"])


def _lines_close(left_line: str | None, right_line: str | None) -> bool:
    if left_line is None or right_line is None:
        return False
    allowed = 2 if min(len(left_line), len(right_line)) >= LONG_STREET_LINE else 1
    return DamerauLevenshtein.distance(left_line, right_line, score_cutoff=allowed) <= allowed


def _street_line_close(left: Side, right: Side) -> bool:
    return (
        _compatible(left["street_dirs"], right["street_dirs"])
        and _compatible(left["street_type"], right["street_type"])
        and (
            _lines_close(left["street_line"], right["street_line"])
            or (_one_type_left_out(left, right) and _lines_close(left["street_bare"], right["street_bare"]))
        )
    )


def _same_building(left: Side, right: Side) -> bool:
    typo_in_name = (
        _jaro_winkler_at_least(left["street_name"], right["street_name"], 0.88)
        and left["street_name"].split(" ")[-1] == right["street_name"].split(" ")[-1]
    )
    return (
        _equal(left["house_number"], right["house_number"])
        and (typo_in_name or _street_line_close(left, right))
        and _compatible(left["street_dirs"], right["street_dirs"])
        and _place_agrees(left, right)
    )


def _place_close(left: Side, right: Side) -> bool:
    left_zip: str | None = left["zip5"]
    right_zip: str | None = right["zip5"]
    return (
        (left_zip is not None and right_zip is not None and DamerauLevenshtein.distance(left_zip, right_zip) <= 1)
        or _jaro_winkler_at_least(left["city"], right["city"], 0.9)
        or _equal(left["state"], right["state"])
    )


def _same_street(left: Side, right: Side) -> bool:
    return _street_line_same(left, right) or _street_line_close(left, right)


def _both_streets_written(left: Side, right: Side) -> bool:
    return left["street_line"] not in (None, "POBOX") and right["street_line"] not in (None, "POBOX")


def _sibling_streets(left: Side, right: Side) -> bool:
    left_line, right_line = left["street_line"], right["street_line"]
    left_bare, right_bare = left["street_bare"], right["street_bare"]
    return (
        _equal(left_line, right_line)
        or (left_line is not None and right_bare is not None and left_line.startswith(right_bare))
        or (right_line is not None and left_bare is not None and right_line.startswith(left_bare))
    )


def _units_compatible(left: Side, right: Side) -> bool:
    return left["unit"] is None or right["unit"] is None or left["unit"] == right["unit"]


def _swapped(left: Side, right: Side) -> bool:
    first_is_last = _equal(left["first_name"], right["last_name"])
    last_is_first = _equal(left["last_name"], right["first_name"])
    return (first_is_last and (last_is_first or _names_close(left["last_name"], right["first_name"]))) or (
        last_is_first and _names_close(left["first_name"], right["last_name"])
    )


def _names_close(left: str | None, right: str | None) -> bool:
    if left is None or right is None:
        return False
    return JaroWinkler.similarity(left, right) >= 0.9 or DamerauLevenshtein.distance(left, right) <= 1


def _lists_intersect(left: Sequence[str] | None, right: Sequence[str] | None) -> bool:
    return left is not None and right is not None and bool(set(left) & set(right))


def _dob_keying_error(left: str | None, right: str | None) -> bool:
    if left is None or right is None:
        return False
    swapped = left[:4] == right[:4] and left[5:7] == right[8:10] and left[8:10] == right[5:7]
    return DamerauLevenshtein.distance(left, right) <= 1 or swapped or _year_off_by_one(left, right)


def _year_off_by_one(left: str, right: str) -> bool:
    """The same day of the year, a year apart (an age counted wrong, 1979 keyed 1980): never a veto."""
    if left[5:10] != right[5:10] or not (left[:4].isdigit() and right[:4].isdigit()):
        return False
    return abs(int(left[:4]) - int(right[:4])) == 1


def _longer_by_an_ending(longer: str, shorter: str) -> bool:
    ending = longer[len(shorter) :]
    return longer.startswith(shorter) and ending in GENDERED_ENDINGS and not (shorter[-1:] == "A" and ending == "A")


def _gender_variant(left: Side, right: Side) -> bool:
    left_name: str = left["first_name"]
    right_name: str = right["first_name"]
    if (_longer_by_an_ending(left_name, right_name) and right["first_attested"]) or (
        _longer_by_an_ending(right_name, left_name) and left["first_attested"]
    ):
        return True
    return (
        len(left_name) == len(right_name) > 2
        and left_name[:-1] == right_name[:-1]
        and sorted((left_name[-1], right_name[-1])) == ["A", "O"]
    )


def _one_keying_error(left: str, right: str) -> bool:
    return (
        DamerauLevenshtein.distance(left, right) <= 1
        and left[:1] == right[:1]
        and max(len(left), len(right)) >= TYPO_MIN_LENGTH
    )


def _short_given_name_typo(left: Side, right: Side) -> bool:
    left_name: str = left["first_name"]
    right_name: str = right["first_name"]
    return (
        DamerauLevenshtein.distance(left_name, right_name) <= 1
        and left_name[:1] == right_name[:1]
        and min(len(left_name), len(right_name)) >= 2
        and not (left["first_attested"] and right["first_attested"])
    )


def _given_name_same(left: Side, right: Side) -> bool:
    left_name: str = left["first_name"]
    right_name: str = right["first_name"]
    return left_name == right_name or left_name.replace(" ", "") == right_name.replace(" ", "")


def _given_names_keyed_apart(left: Side, right: Side, minimum_length: int) -> bool:
    left_name: str = left["first_name"]
    right_name: str = right["first_name"]
    return (
        min(len(left_name), len(right_name)) >= minimum_length
        and not (left["first_attested"] and right["first_attested"])
        and DamerauLevenshtein.distance(left_name.replace(" ", ""), right_name.replace(" ", ""), score_cutoff=2) <= 2
    )


def _given_name_two_keying_errors(left: Side, right: Side) -> bool:
    return left["first_name"][:1] == right["first_name"][:1] and _given_names_keyed_apart(left, right, 4)


def _given_name_keyed_apart(left: Side, right: Side) -> bool:
    return _given_names_keyed_apart(left, right, 3)


def _dob_two_keying_errors(left: str | None, right: str | None) -> bool:
    if left is None or right is None:
        return False
    return left[:4] == right[:4] and DamerauLevenshtein.distance(left, right, score_cutoff=2) <= 2


def _second_given_initial(first_name: str | None) -> str:
    """DuckDB's substr(split_part(x, ' ', 2), 1, 1): '' when there is no second word."""
    parts = (first_name or "").split(" ")
    return parts[1][:1] if len(parts) > 1 else ""


def _middle_in_given(left: Side, right: Side) -> bool:
    left_middle: str = left["middle_initial"]
    right_middle: str = right["middle_initial"]
    return left_middle == _second_given_initial(right["first_name"]) or right_middle == _second_given_initial(
        left["first_name"]
    )


def _nickname(left: Side, right: Side) -> bool:
    return _lists_intersect(left["first_forms"], right["first_forms"]) and not (
        " " in left["first_name"] and " " in right["first_name"]
    )


def _initial(left: Side, right: Side) -> bool:
    return (len(left["first_name"]) == 1 or len(right["first_name"]) == 1) and left["first_name"][:1] == right[
        "first_name"
    ][:1]


Condition = Callable[[Side, Side], bool]


class Role(Enum):
    """What the decision rule reads a level as (`match.decide`)."""

    # A name level on which the two names are one person's: exact, a nickname, a typo, ...
    NAME_AGREES = "name_agrees"
    # A given-name level that names the person even when the surname changed (marriage).
    GIVEN_NAME_IDENTIFIES = "given_name_identifies"
    # A given-name level that agrees only with an exact date of birth or TIN beside an agreeing
    # surname: a name keyed wrong twice is also, now and then, a sibling's name written once wrong.
    NAME_AGREES_WITH_DOB_OR_TIN = "name_agrees_with_dob_or_tin"
    # A given-name level that agrees only beside a TIN that agrees exactly (`decide._tin_identifies`).
    NAME_AGREES_WITH_TIN = "name_agrees_with_tin"
    # An address level on which the request's address is this taxpayer's.
    CORROBORATES = "corroborates"
    # An address level that corroborates only with an exact date of birth or TIN: a neighbour's
    # address as much as a typo of this one.
    CORROBORATES_WITH_DOB_OR_TIN = "corroborates_with_dob_or_tin"
    # An address level that also corroborates when the given name and the surname both agree exactly.
    CORROBORATES_WITH_EXACT_NAMES = "corroborates_with_exact_names"


@dataclass(frozen=True)
class Level:
    label: str
    # Splink's SQL condition; None for the last level of a comparison (everything else).
    sql: str | None
    # The same condition in Python; None where `sql` is None.
    python: Condition | None
    m_prior: float
    roles: frozenset[Role] = frozenset()
    # Term-frequency adjusted (an exact match on this column: a shared rare name says more).
    term_frequency_column: str | None = None
    # Chance agreement set from the number of taxpayers instead of estimated from the master.
    fixed_u: Callable[[int], float] | None = None
    # Chance agreement counted over the master's name frequencies instead of sampled
    # (`CROSSED_NAMES`: the given name of one taxpayer is the surname of another).
    counted_u: str | None = None
    # When the random sample never saw the level, the u of this (weaker) level of the comparison
    # stands in: a level with no u would add no weight, and one pseudo-count would add too much.
    u_when_unseen: str | None = None


@dataclass(frozen=True)
class Comparison:
    name: str
    null_label: str
    null_sql: str
    null_python: Condition
    levels: tuple[Level, ...]


AGREES = frozenset({Role.NAME_AGREES})
CROSSED_NAMES = "crossed_names"


def _chance_same_tin(taxpayers: int) -> float:
    # As if a TIN were a random identifier among the taxpayers: conservative for exact agreement.
    return 1.0 / max(taxpayers, 2)


def _chance_neighbour_tin(taxpayers: int) -> float:
    # As if a TIN's keyed-in neighbours were that many random others: weak for a keying error.
    return min(0.25, TIN_NEIGHBOURS / max(taxpayers, 2))


def _chance_other_tin(taxpayers: int) -> float:
    return 1.0 - _chance_same_tin(taxpayers) - _chance_neighbour_tin(taxpayers)


def _null(column: str) -> tuple[str, Condition]:
    return (
        f'"{column}_l" IS NULL OR "{column}_r" IS NULL',
        lambda left, right: left[column] is None or right[column] is None,
    )


# Why each level exists (docs/matching.md says more):
# first name   exact (spaces aside; with term frequency: a shared rare name says more than a shared
#              JOHN), swapped given/family order, gender_variant (Gabriel/Gabriela: two people, never agreement),
#              nickname (Bob/Robert, Pepe/Jose), fuzzy (a typo), typo (one keying error Jaro-Winkler
#              misses, a short name's only when one side is no name anyone has), translit
#              (Mohammed/Muhammad: same consonant skeleton), two_keying_errors (agrees only with an exact
#              date of birth or TIN), keyed_apart (the first letter keyed wrong too: only with an exact
#              TIN), initial (weak, never enough to disclose).
# last name    exact (term frequency), swapped, one_surname (Garcia vs Garcia Lopez), fuzzy, typo, translit.
# middle       exact initial (a shared initial is ~4 bits: what tells Bob Smith at an address from
#              a stranger when no date of birth is given), in_given (moved into the given name),
#              different (a request rarely gets a middle name wrong: evidence against, not a veto).
# dob          exact, keying_error (one digit, day and month swapped, or the year one off: weak agreement,
#              never a veto), two_keying_errors (two digits within the year: no veto).
# tin          exact, keying_error (one digit or a transposition), else (a veto in the decision rule).
# address      exact, line (the whole line agrees once spaces, suffix spellings and a missing directional
#              are folded), street_typo (same house, a keying error in the street), other_unit (same
#              building, another door: never corroborates), place_typo (same house and street, ZIP or
#              city keyed wrong), house_typo (house number keyed wrong) and street_only (the street and
#              place, another house number): weak, they corroborate only with a date of birth or TIN
#              that agrees (house_typo also with both names exact: one keying error in the house
#              number of this street and place, against a neighbour who shares the whole name);
#              house_place (the same house number and ZIP, another street: weak too); zip_only.
WEAK = frozenset({Role.CORROBORATES_WITH_DOB_OR_TIN})
COMPARISONS: tuple[Comparison, ...] = (
    Comparison("first_name", "first_name is NULL", *_null("first_name"), (
        # The same letters, spaces aside (`San Dra`, `Mary Ann` and `Maryann`, `JoseAntonio`).
        Level("exact", f'"first_name_l" = "first_name_r" OR {GIVEN_NAME_SPACED}', _given_name_same,
              0.80, AGREES | {Role.GIVEN_NAME_IDENTIFIES}, term_frequency_column="first_name"),
        Level("swapped", NAMES_SWAPPED, _swapped, 0.01, AGREES, counted_u=CROSSED_NAMES),
        Level("gender_variant", GENDER_VARIANT, _gender_variant, 0.000001),
        Level("nickname", NICKNAME, _nickname, 0.08, AGREES | {Role.GIVEN_NAME_IDENTIFIES}),
        Level("fuzzy", 'jaro_winkler_similarity("first_name_l", "first_name_r") >= 0.9',
              lambda left, right: _jaro_winkler_at_least(left["first_name"], right["first_name"], 0.9), 0.04, AGREES),
        Level("typo", f"{_one_keying_error_sql('first_name')} OR {SHORT_GIVEN_NAME_TYPO}",
              lambda left, right: (
                  _one_keying_error(left["first_name"], right["first_name"]) or _short_given_name_typo(left, right)
              ), 0.02, AGREES, u_when_unseen="fuzzy"),
        # A skeleton of two letters is too little to say two given names are one (Susan, Sean: SN).
        Level("translit", "first_skeleton_l = first_skeleton_r AND length(first_skeleton_l) >= 3",
              lambda left, right: (
                  _equal(left["first_skeleton"], right["first_skeleton"]) and len(left["first_skeleton"]) >= 3
              ), 0.03, AGREES),
        Level("two_keying_errors", GIVEN_NAME_TWO_KEYING_ERRORS, _given_name_two_keying_errors, 0.005,
              frozenset({Role.NAME_AGREES_WITH_DOB_OR_TIN})),
        Level("keyed_apart", GIVEN_NAME_KEYED_APART, _given_name_keyed_apart, 0.002,
              frozenset({Role.NAME_AGREES_WITH_TIN})),
        # Only a written initial (J. Smith) agrees by initial; Robert and Ronald are two names.
        Level("initial", "(length(first_name_l) = 1 OR length(first_name_r) = 1)"
              " AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)", _initial, 0.01),
        Level("different", None, None, 0.002999),
    )),
    Comparison("last_name", "last_name is NULL", *_null("last_name"), (
        Level("exact", '"last_name_l" = "last_name_r"', lambda left, right: left["last_name"] == right["last_name"],
              0.77, AGREES, term_frequency_column="last_name"),
        Level("swapped", NAMES_SWAPPED, _swapped, 0.01, AGREES, counted_u=CROSSED_NAMES),
        Level("one_surname", 'array_length(list_intersect("surname_tokens_l", "surname_tokens_r")) >= 1',
              lambda left, right: _lists_intersect(left["surname_tokens"], right["surname_tokens"]), 0.13, AGREES),
        Level("fuzzy", 'jaro_winkler_similarity("last_name_l", "last_name_r") >= 0.9',
              lambda left, right: _jaro_winkler_at_least(left["last_name"], right["last_name"], 0.9), 0.03, AGREES),
        Level("typo", _one_keying_error_sql("last_name"),
              lambda left, right: _one_keying_error(left["last_name"], right["last_name"]), 0.02, AGREES,
              u_when_unseen="fuzzy"),
        Level("translit", '"last_skeleton_l" = "last_skeleton_r"',
              lambda left, right: _equal(left["last_skeleton"], right["last_skeleton"]), 0.03, AGREES),
        Level("different", None, None, 0.01),
    )),
    Comparison("middle_initial", "middle_initial is NULL", *_null("middle_initial"), (
        Level("exact", '"middle_initial_l" = "middle_initial_r"',
              lambda left, right: left["middle_initial"] == right["middle_initial"], 0.90),
        Level("in_given", MIDDLE_IN_GIVEN, _middle_in_given, 0.02),
        Level("different", None, None, 0.08),
    )),
    Comparison("dob", "dob is NULL", *_null("dob"), (
        Level("exact", '"dob_l" = "dob_r"', lambda left, right: left["dob"] == right["dob"], 0.95),
        Level("keying_error", f"{one_edit_apart_sql('dob')} OR (substr(dob_l, 1, 4) = substr(dob_r, 1, 4) "
              "AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2))"
              " OR (substr(dob_l, 6, 5) = substr(dob_r, 6, 5)"
              " AND abs(TRY_CAST(substr(dob_l, 1, 4) AS INTEGER) - TRY_CAST(substr(dob_r, 1, 4) AS INTEGER)) = 1)",
              lambda left, right: _dob_keying_error(left["dob"], right["dob"]), 0.04),
        # Two digits keyed wrong within the year (1939-11-23 for 1939-12-13): no agreement, and no
        # veto either; a relative of that name is another generation, another year.
        Level("two_keying_errors", "left(dob_l, 4) = left(dob_r, 4) AND damerau_levenshtein(dob_l, dob_r) <= 2",
              lambda left, right: _dob_two_keying_errors(left["dob"], right["dob"]), 0.005),
        Level("different", None, None, 0.005),
    )),
    Comparison("tin", "tin is NULL", *_null("tin"), (
        Level("exact", '"tin_l" = "tin_r"', lambda left, right: left["tin"] == right["tin"], 0.97,
              fixed_u=_chance_same_tin),
        Level("keying_error", one_edit_apart_sql("tin"),
              lambda left, right: DamerauLevenshtein.distance(left["tin"], right["tin"]) <= 1, 0.02,
              fixed_u=_chance_neighbour_tin),
        Level("different", None, None, 0.01, fixed_u=_chance_other_tin),
    )),
    # A return may give its street without a house number (`torrens street`; a request never does):
    # compared still, it can only be street_only - the street, not the house - or less.
    Comparison("address", "null", "(house_number_l IS NULL OR house_number_r IS NULL)"
               " AND (street_line_l IS NULL OR street_line_r IS NULL)",
               lambda left, right: (
                   (left["house_number"] is None or right["house_number"] is None)
                   and (left["street_line"] is None or right["street_line"] is None)
               ), (
        Level("exact", "house_number_l = house_number_r AND street_name_l = street_name_r"
              f" AND {ADDRESS_PLACE_AGREES} AND {UNITS_COMPATIBLE}",
              lambda left, right: (
                  _equal(left["house_number"], right["house_number"])
                  and _equal(left["street_name"], right["street_name"])
                  and _place_agrees(left, right)
                  and _units_compatible(left, right)
              ), 0.68, frozenset({Role.CORROBORATES})),
        Level("line", f"house_number_l = house_number_r AND {STREET_LINE_SAME} AND {ADDRESS_PLACE_AGREES}"
              f" AND {UNITS_COMPATIBLE}",
              lambda left, right: (
                  _equal(left["house_number"], right["house_number"])
                  and _street_line_same(left, right)
                  and _place_agrees(left, right)
                  and _units_compatible(left, right)
              ), 0.08, frozenset({Role.CORROBORATES})),
        Level("street_typo", f"{SAME_BUILDING} AND {UNITS_COMPATIBLE}",
              lambda left, right: _same_building(left, right) and _units_compatible(left, right), 0.10,
              frozenset({Role.CORROBORATES})),
        # Same building, another door: never corroborates.
        Level("other_unit", SAME_BUILDING, _same_building, 0.01),
        Level("place_typo",
              f"house_number_l = house_number_r AND {SAME_STREET} AND {PLACE_CLOSE} AND {UNITS_COMPATIBLE}",
              lambda left, right: (
                  _equal(left["house_number"], right["house_number"])
                  and _same_street(left, right)
                  and _place_close(left, right)
                  and _units_compatible(left, right)
              ), 0.03, WEAK),
        Level("house_typo", "damerau_levenshtein(house_number_l, house_number_r) <= 1"
              f" AND {SAME_STREET} AND {STREET_PLACE_AGREES} AND {UNITS_COMPATIBLE}",
              lambda left, right: (
                  left["house_number"] is not None
                  and right["house_number"] is not None
                  and DamerauLevenshtein.distance(left["house_number"], right["house_number"]) <= 1
                  and _same_street(left, right)
                  and _street_place_agrees(left, right)
                  and _units_compatible(left, right)
              ), 0.02, WEAK | {Role.CORROBORATES_WITH_EXACT_NAMES}),
        Level("street_only", f"{SAME_STREET} AND {STREET_PLACE_AGREES}",
              lambda left, right: _same_street(left, right) and _street_place_agrees(left, right), 0.02, WEAK),
        # The same house number in the same ZIP on a street that shares nothing with this one (the
        # street replaced, or written as a locality): two of the address's three parts, as
        # street_only is, so it corroborates only with a date of birth or TIN that agrees exactly.
        # Never a sibling street (Oak Ct and Oak St, N and S Main St): the same number there is the
        # neighbouring household, not a street written wrong.
        Level("house_place", f"house_number_l = house_number_r AND zip5_l = zip5_r AND {UNITS_COMPATIBLE}"
              f" AND {BOTH_STREETS_WRITTEN} AND NOT {SIBLING_STREETS}",
              lambda left, right: (
                  _equal(left["house_number"], right["house_number"])
                  and _equal(left["zip5"], right["zip5"])
                  and _units_compatible(left, right)
                  and _both_streets_written(left, right)
                  and not _sibling_streets(left, right)
              ), 0.01, WEAK),
        Level("zip_only", "zip5_l = zip5_r", lambda left, right: _equal(left["zip5"], right["zip5"]), 0.02),
        Level("different", None, None, 0.03),
    )),
)  # fmt: skip

COMPARISONS_BY_NAME: dict[str, Comparison] = {comparison.name: comparison for comparison in COMPARISONS}
M_PRIORS: dict[str, dict[str, float]] = {
    comparison.name: {level.label: level.m_prior for level in comparison.levels} for comparison in COMPARISONS
}
# Per comparison, its levels in order: (label, condition); the first is the null level, labelled
# `missing` (as a pair's level reads when the batch query finds a NULL), and the last has no condition.
PYTHON_LEVELS: dict[str, tuple[tuple[str, Condition | None], ...]] = {
    comparison.name: (
        ("missing", comparison.null_python),
        *((level.label, level.python) for level in comparison.levels),
    )
    for comparison in COMPARISONS
}
# Each comparison's name and its levels' labels, in Splink's order: what the decision rule and the
# Python twin read. A workspace whose stored model has another shape was fitted by another version
# and is refused.
COMPARISON_SHAPE: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (comparison.name, (comparison.null_label, *(level.label for level in comparison.levels)))
    for comparison in COMPARISONS
)


def labels_with(comparison: str, role: Role) -> frozenset[str]:
    """The labels of a comparison's levels that play `role` in the decision rule."""
    return frozenset(level.label for level in COMPARISONS_BY_NAME[comparison].levels if role in level.roles)
