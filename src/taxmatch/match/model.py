"""The linkage model: Splink 5 comparisons, blocking rules, fitting and versioning.

One record on each side has the same columns (`MODEL_INPUT_COLUMNS`): a request (or
one of its prior addresses) on the left, one filed return on the right. A pair's match
probability says "this return belongs to the person requested"; the decision rule
(`match.decide`) turns pairs into one answer per request.

Parameters:
- u (chance agreement) is estimated by Splink from random pairs of the master file itself:
  the master is the population a request is matched against, so it is the right sample.
- m (agreement among true matches) is a documented prior for how a *request* differs from
  the return of the same person (nicknames, typos, a keyed-in date). It cannot be learnt
  from the master alone, whose rows of one taxpayer agree far more than a request does.
- lambda (prior that a request and a random return match) is 1 / number of taxpayers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from splink import SettingsCreator

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

MODEL_INPUT_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "first_name",
    "first_forms",
    "first_skeleton",
    "first_attested",
    "middle_initial",
    "last_name",
    "surname_tokens",
    "last_skeleton",
    "suffix",
    "dob",
    "tin",
    "house_number",
    "street_name",
    "street_line",
    "street_dirs",
    "street_type",
    "unit",
    "zip5",
    "city",
    "state",
)

# A street line (folded, no spaces: `SIDAWAYSTREET`) at least this long may carry two keying errors.
LONG_STREET_LINE = 10
# A house number has about this many numbers one keying error away (a digit changed, two swapped,
# one dropped or added): the chance agreement of `house_typo` is this many times that of a shared street.
HOUSE_NUMBER_NEIGHBOURS = 30
# The columns the address comparison reads.
ADDRESS_COLUMNS: tuple[str, ...] = (
    "house_number", "street_name", "street_line", "street_dirs", "street_type", "unit", "zip5", "city", "state",
)  # fmt: skip
ADDRESS_PLACE_AGREES = "(zip5_l = zip5_r OR (city_l = city_r AND state_l = state_r))"
# Where the house number differs (house_typo, street_only) the place is all that ties the street to
# this one: the same ZIP, or the same city, keyed right or one typo off (Jaro-Winkler >= 0.9), in the
# same state or with the state left out on one side (`port augusta` with no state).
STATES_COMPATIBLE = "(state_l IS NULL OR state_r IS NULL OR state_l = state_r)"
STREET_PLACE_AGREES = f"(zip5_l = zip5_r OR (jaro_winkler_similarity(city_l, city_r) >= 0.9 AND {STATES_COMPATIBLE}))"
# A unit on only one side is compatible (it is often left off); two different units are two doors.
UNITS_COMPATIBLE = "(unit_l IS NULL OR unit_r IS NULL OR unit_l = unit_r)"
# A directional on only one side is compatible (`3077 Elm Pl` for `3077 E Elm Pl`); N and S are two streets.
DIRECTIONS_COMPATIBLE = "(street_dirs_l IS NULL OR street_dirs_r IS NULL OR street_dirs_l = street_dirs_r)"
# Two street types that both parsed (CT, ST) and differ are two streets; a type that did not parse
# (`srteet`, a suffix glued to the name) leaves it to the line.
TYPES_COMPATIBLE = "(street_type_l IS NULL OR street_type_r IS NULL OR street_type_l = street_type_r)"
# The whole street line compared without spaces (`macneilplace`, `tasman p lace`, `crispcir cuit`)
# and folded (suffixes long, directionals apart): one keying error, or two in a long line.
STREET_LINE_CLOSE = (
    f"({DIRECTIONS_COMPATIBLE} AND {TYPES_COMPATIBLE}"
    " AND damerau_levenshtein(street_line_l, street_line_r) <= CASE WHEN least(length(street_line_l),"
    f" length(street_line_r)) >= {LONG_STREET_LINE} THEN 2 ELSE 1 END)"
)
STREET_LINE_SAME = f"(street_line_l = street_line_r AND {DIRECTIONS_COMPATIBLE})"
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

# Why each level exists (docs/matching.md says more):
# first name   exact (with term frequency: a shared rare name says more than a shared JOHN), swapped
#              given/family order, nickname (Bob/Robert, Pepe/Jose), gender_variant (Gabriel/Gabriela:
#              two people, never agreement), fuzzy (a typo), translit
#              (Mohammed/Muhammad: same consonant skeleton), initial (weak, never enough to disclose).
#              typo (one keying error in a short name, Jaro-Winkler misses it).
# last name    exact (term frequency), swapped, one_surname (Garcia vs Garcia Lopez), fuzzy, typo, translit.
# middle       exact initial (a shared initial is ~4 bits: what tells Bob Smith at an address from
#              a stranger when no date of birth is given), in_given (moved into the given name),
#              different (a request rarely gets a middle name wrong: evidence against, not a veto).
# dob          exact, keying_error (one digit, or day and month swapped: weak agreement, never a veto).
# tin          exact, keying_error (one digit or a transposition), else (a veto in the decision rule).
# address      exact, line (the whole line agrees once spaces, suffix spellings and a missing directional
#              are folded), street_typo (same house, a keying error in the street), other_unit (same
#              building, another door: never corroborates), place_typo (same house and street, ZIP or
#              city keyed wrong), house_typo (house number keyed wrong) and street_only (the street and
#              place, another house number): weak, they corroborate only with a date of birth or TIN
#              that agrees; zip_only.
M_PRIORS: dict[str, dict[str, float]] = {
    "first_name": {"exact": 0.80, "swapped": 0.01, "gender_variant": 0.000001, "nickname": 0.08, "fuzzy": 0.04,
                   "typo": 0.02, "translit": 0.03, "initial": 0.01, "different": 0.009999},
    "last_name": {"exact": 0.77, "swapped": 0.01, "one_surname": 0.13, "fuzzy": 0.03, "typo": 0.02, "translit": 0.03,
                  "different": 0.01},
    "middle_initial": {"exact": 0.90, "in_given": 0.02, "different": 0.08},
    "dob": {"exact": 0.95, "keying_error": 0.04, "different": 0.01},
    "tin": {"exact": 0.97, "keying_error": 0.02, "different": 0.01},
    "address": {"exact": 0.68, "line": 0.08, "street_typo": 0.10, "other_unit": 0.01, "place_typo": 0.03,
                "house_typo": 0.02, "street_only": 0.02, "zip_only": 0.03, "different": 0.03},
}  # fmt: skip

# TINs are unique per taxpayer, so chance agreement is set, not estimated: random sampling would
# rarely see two returns of one TIN and could leave u at zero.
TIN_NEIGHBOURS = 9 * 9 + 8  # one digit changed, or two adjacent digits swapped


def _level(level: Any, label: str, comparison: str) -> Any:
    return level.configure(label_for_charts=label, m_probability=M_PRIORS[comparison][label])


def comparisons(taxpayers: int) -> list[Any]:
    # Splink is imported where a model is built, not where one is used: a batch or a lookup
    # reads the fitted model and its compiled SQL from the workspace (0.1 s of imports saved).
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    first_name = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.NullLevel("first_name"),
            _level(cll.ExactMatchLevel("first_name", term_frequency_adjustments=True), "exact", "first_name"),
            _level(cll.CustomLevel(NAMES_SWAPPED), "swapped", "first_name"),
            _level(cll.CustomLevel(GENDER_VARIANT), "gender_variant", "first_name"),
            _level(cll.CustomLevel(NICKNAME), "nickname", "first_name"),
            _level(cll.JaroWinklerLevel("first_name", 0.9), "fuzzy", "first_name"),
            _level(
                cll.CustomLevel(f"{_one_keying_error_sql('first_name')} OR {SHORT_GIVEN_NAME_TYPO}"),
                "typo",
                "first_name",
            ),
            # A skeleton of two letters is too little to say two given names are one (Susan, Sean: SN).
            _level(
                cll.CustomLevel("first_skeleton_l = first_skeleton_r AND length(first_skeleton_l) >= 3"),
                "translit",
                "first_name",
            ),
            # Only a written initial (J. Smith) agrees by initial; Robert and Ronald are two names.
            _level(
                cll.CustomLevel(
                    "(length(first_name_l) = 1 OR length(first_name_r) = 1)"
                    " AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)"
                ),
                "initial",
                "first_name",
            ),
            _level(cll.ElseLevel(), "different", "first_name"),
        ],
    )
    last_name = cl.CustomComparison(
        output_column_name="last_name",
        comparison_levels=[
            cll.NullLevel("last_name"),
            _level(cll.ExactMatchLevel("last_name", term_frequency_adjustments=True), "exact", "last_name"),
            _level(cll.CustomLevel(NAMES_SWAPPED), "swapped", "last_name"),
            _level(cll.ArrayIntersectLevel("surname_tokens", min_intersection=1), "one_surname", "last_name"),
            _level(cll.JaroWinklerLevel("last_name", 0.9), "fuzzy", "last_name"),
            _level(cll.CustomLevel(_one_keying_error_sql("last_name")), "typo", "last_name"),
            _level(cll.ExactMatchLevel("last_skeleton"), "translit", "last_name"),
            _level(cll.ElseLevel(), "different", "last_name"),
        ],
    )
    middle_initial = cl.CustomComparison(
        output_column_name="middle_initial",
        comparison_levels=[
            cll.NullLevel("middle_initial"),
            _level(cll.ExactMatchLevel("middle_initial"), "exact", "middle_initial"),
            _level(cll.CustomLevel(MIDDLE_IN_GIVEN), "in_given", "middle_initial"),
            _level(cll.ElseLevel(), "different", "middle_initial"),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            _level(cll.ExactMatchLevel("dob"), "exact", "dob"),
            _level(
                cll.CustomLevel(
                    f"{one_edit_apart_sql('dob')} OR (substr(dob_l, 1, 4) = substr(dob_r, 1, 4) "
                    "AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2))"
                ),
                "keying_error",
                "dob",
            ),
            _level(cll.ElseLevel(), "different", "dob"),
        ],
    )
    # As if a TIN were a random identifier among the taxpayers, and its keyed-in neighbours were
    # that many random others: conservative for exact agreement, weak for a keying error.
    chance_same_tin = 1.0 / max(taxpayers, 2)
    chance_neighbour_tin = min(0.25, TIN_NEIGHBOURS / max(taxpayers, 2))
    tin = cl.CustomComparison(
        output_column_name="tin",
        comparison_levels=[
            cll.NullLevel("tin"),
            _level(cll.ExactMatchLevel("tin"), "exact", "tin").configure(
                u_probability=chance_same_tin, fix_u_probability=True
            ),
            _level(cll.CustomLevel(one_edit_apart_sql("tin")), "keying_error", "tin").configure(
                u_probability=chance_neighbour_tin, fix_u_probability=True
            ),
            _level(cll.ElseLevel(), "different", "tin").configure(
                u_probability=1.0 - chance_same_tin - chance_neighbour_tin, fix_u_probability=True
            ),
        ],
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.CustomLevel("house_number_l IS NULL OR house_number_r IS NULL", "null").configure(is_null_level=True),
            _level(
                cll.CustomLevel(
                    "house_number_l = house_number_r AND street_name_l = street_name_r"
                    f" AND {ADDRESS_PLACE_AGREES} AND {UNITS_COMPATIBLE}"
                ),
                "exact",
                "address",
            ),
            _level(
                cll.CustomLevel(
                    f"house_number_l = house_number_r AND {STREET_LINE_SAME} AND {ADDRESS_PLACE_AGREES}"
                    f" AND {UNITS_COMPATIBLE}"
                ),
                "line",
                "address",
            ),
            _level(cll.CustomLevel(f"{SAME_BUILDING} AND {UNITS_COMPATIBLE}"), "street_typo", "address"),
            _level(cll.CustomLevel(SAME_BUILDING), "other_unit", "address"),
            _level(
                cll.CustomLevel(
                    f"house_number_l = house_number_r AND {SAME_STREET} AND {PLACE_CLOSE} AND {UNITS_COMPATIBLE}"
                ),
                "place_typo",
                "address",
            ),
            _level(
                cll.CustomLevel(
                    "damerau_levenshtein(house_number_l, house_number_r) <= 1"
                    f" AND {SAME_STREET} AND {STREET_PLACE_AGREES}"
                    f" AND {UNITS_COMPATIBLE}"
                ),
                "house_typo",
                "address",
            ),
            _level(
                cll.CustomLevel(f"{SAME_STREET} AND {STREET_PLACE_AGREES}"),
                "street_only",
                "address",
            ),
            _level(cll.CustomLevel("zip5_l = zip5_r"), "zip_only", "address"),
            _level(cll.ElseLevel(), "different", "address"),
        ],
    )
    return [first_name, last_name, middle_initial, dob, tin, address]


def blocking_rules() -> list[Any]:
    """Candidate pairs: any one rule suffices. The address rule is what corroboration needs."""
    from splink import block_on

    return [
        block_on("zip5", "house_number"),
        block_on("surname_tokens[1]", "dob"),
        block_on("first_name", "last_name", "state"),
        block_on("tin"),
    ]


def settings_creator(link_type: str, taxpayers: int) -> SettingsCreator:
    from splink import SettingsCreator

    # A request and a random return belong to the same person with chance 1 / taxpayers.
    return SettingsCreator(
        link_type=link_type,  # type: ignore[arg-type]
        comparisons=comparisons(taxpayers),
        blocking_rules_to_generate_predictions=blocking_rules(),
        probability_two_random_records_match=min(0.5, 1.0 / max(taxpayers, 2)),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["suffix"],
    )


# Each comparison's name and its levels' labels, in Splink's order: what the decision rule and the
# Python twin read. A workspace whose stored model has another shape was fitted by another version
# and is refused. Written out so that checking it needs no Splink; a test holds it to
# `settings_creator(...)`'s comparisons.
COMPARISON_SHAPE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("first_name", ("first_name is NULL", "exact", "swapped", "gender_variant", "nickname", "fuzzy", "typo",
                    "translit", "initial", "different")),
    ("last_name", ("last_name is NULL", "exact", "swapped", "one_surname", "fuzzy", "typo", "translit", "different")),
    ("middle_initial", ("middle_initial is NULL", "exact", "in_given", "different")),
    ("dob", ("dob is NULL", "exact", "keying_error", "different")),
    ("tin", ("tin is NULL", "exact", "keying_error", "different")),
    ("address", ("null", "exact", "line", "street_typo", "other_unit", "place_typo", "house_typo", "street_only",
                 "zip_only", "different")),
)  # fmt: skip


def comparison_shape(model: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`COMPARISON_SHAPE` as a model (a stored one, or Splink's settings dict) has it."""
    return tuple(
        (
            str(comparison["output_column_name"]),
            tuple(str(level.get("label_for_charts", "")) for level in comparison["comparison_levels"]),
        )
        for comparison in model["comparisons"]
    )


def model_version(model: dict[str, Any]) -> str:
    canonical = json.dumps(model, sort_keys=True, separators=(",", ":"))
    return "model-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


# ---- the same levels in Python -------------------------------------------------------------------
# The on-demand path scores a handful of pairs in Python (microseconds) instead of planning a SQL
# query (milliseconds). These predicates are the SQL conditions above, level by level, with SQL's
# NULL semantics (a comparison with NULL is not true); a test holds them to the SQL on every pair
# of a synthetic batch.

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


def _street_line_same(left: Side, right: Side) -> bool:
    return _equal(left["street_line"], right["street_line"]) and _compatible(left["street_dirs"], right["street_dirs"])


def _street_line_close(left: Side, right: Side) -> bool:
    left_line: str | None = left["street_line"]
    right_line: str | None = right["street_line"]
    if left_line is None or right_line is None:
        return False
    allowed = 2 if min(len(left_line), len(right_line)) >= LONG_STREET_LINE else 1
    return (
        _compatible(left["street_dirs"], right["street_dirs"])
        and _compatible(left["street_type"], right["street_type"])
        and DamerauLevenshtein.distance(left_line, right_line, score_cutoff=allowed) <= allowed
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
    return DamerauLevenshtein.distance(left, right) <= 1 or swapped


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


Condition = Callable[[Side, Side], bool]

# Per comparison, its levels in order: (label, condition); the first level is the null level and
# the last one (else) has no condition.
PYTHON_LEVELS: dict[str, tuple[tuple[str, Condition | None], ...]] = {
    "first_name": (
        ("missing", lambda left, right: left["first_name"] is None or right["first_name"] is None),
        ("exact", lambda left, right: left["first_name"] == right["first_name"]),
        ("swapped", _swapped),
        ("gender_variant", _gender_variant),
        (
            "nickname",
            lambda left, right: (
                _lists_intersect(left["first_forms"], right["first_forms"])
                and not (" " in left["first_name"] and " " in right["first_name"])
            ),
        ),
        ("fuzzy", lambda left, right: _jaro_winkler_at_least(left["first_name"], right["first_name"], 0.9)),
        (
            "typo",
            lambda left, right: (
                _one_keying_error(left["first_name"], right["first_name"]) or _short_given_name_typo(left, right)
            ),
        ),
        (
            "translit",
            lambda left, right: (
                _equal(left["first_skeleton"], right["first_skeleton"]) and len(left["first_skeleton"]) >= 3
            ),
        ),
        (
            "initial",
            lambda left, right: (
                (len(left["first_name"]) == 1 or len(right["first_name"]) == 1)
                and left["first_name"][:1] == right["first_name"][:1]
            ),
        ),
        ("different", None),
    ),
    "last_name": (
        ("missing", lambda left, right: left["last_name"] is None or right["last_name"] is None),
        ("exact", lambda left, right: left["last_name"] == right["last_name"]),
        ("swapped", _swapped),
        ("one_surname", lambda left, right: _lists_intersect(left["surname_tokens"], right["surname_tokens"])),
        ("fuzzy", lambda left, right: _jaro_winkler_at_least(left["last_name"], right["last_name"], 0.9)),
        ("typo", lambda left, right: _one_keying_error(left["last_name"], right["last_name"])),
        ("translit", lambda left, right: _equal(left["last_skeleton"], right["last_skeleton"])),
        ("different", None),
    ),
    "middle_initial": (
        ("missing", lambda left, right: left["middle_initial"] is None or right["middle_initial"] is None),
        ("exact", lambda left, right: left["middle_initial"] == right["middle_initial"]),
        ("in_given", _middle_in_given),
        ("different", None),
    ),
    "dob": (
        ("missing", lambda left, right: left["dob"] is None or right["dob"] is None),
        ("exact", lambda left, right: left["dob"] == right["dob"]),
        ("keying_error", lambda left, right: _dob_keying_error(left["dob"], right["dob"])),
        ("different", None),
    ),
    "tin": (
        ("missing", lambda left, right: left["tin"] is None or right["tin"] is None),
        ("exact", lambda left, right: left["tin"] == right["tin"]),
        ("keying_error", lambda left, right: DamerauLevenshtein.distance(left["tin"], right["tin"]) <= 1),
        ("different", None),
    ),
    "address": (
        ("missing", lambda left, right: left["house_number"] is None or right["house_number"] is None),
        (
            "exact",
            lambda left, right: (
                _equal(left["house_number"], right["house_number"])
                and _equal(left["street_name"], right["street_name"])
                and _place_agrees(left, right)
                and _units_compatible(left, right)
            ),
        ),
        (
            "line",
            lambda left, right: (
                _equal(left["house_number"], right["house_number"])
                and _street_line_same(left, right)
                and _place_agrees(left, right)
                and _units_compatible(left, right)
            ),
        ),
        ("street_typo", lambda left, right: _same_building(left, right) and _units_compatible(left, right)),
        ("other_unit", _same_building),
        (
            "place_typo",
            lambda left, right: (
                _equal(left["house_number"], right["house_number"])
                and _same_street(left, right)
                and _place_close(left, right)
                and _units_compatible(left, right)
            ),
        ),
        (
            "house_typo",
            lambda left, right: (
                DamerauLevenshtein.distance(left["house_number"], right["house_number"]) <= 1
                and _same_street(left, right)
                and _street_place_agrees(left, right)
                and _units_compatible(left, right)
            ),
        ),
        ("street_only", lambda left, right: _same_street(left, right) and _street_place_agrees(left, right)),
        ("zip_only", lambda left, right: _equal(left["zip5"], right["zip5"])),
        ("different", None),
    ),
}
