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
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

MODEL_INPUT_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "first_name",
    "first_forms",
    "middle_initial",
    "last_name",
    "surname_tokens",
    "suffix",
    "dob",
    "tin",
    "house_number",
    "street_name",
    "zip5",
    "city",
    "state",
)

ADDRESS_PLACE_AGREES = "(zip5_l = zip5_r OR (city_l = city_r AND state_l = state_r))"

# Level labels are what `evidence` reports; the decision rule reads levels by label, not by number.
FIRST_NAME_LEVELS = ("exact", "nickname", "fuzzy", "initial", "different")
LAST_NAME_LEVELS = ("exact", "one_surname", "fuzzy", "different")
DOB_LEVELS = ("exact", "keying_error", "different")
ADDRESS_LEVELS = ("exact", "street_typo", "zip_only", "different")

# m priors, per level in the order above: P(level | same person), request vs own return.
M_PRIORS: dict[str, tuple[float, ...]] = {
    "first_name": (0.80, 0.10, 0.06, 0.02, 0.02),
    "last_name": (0.82, 0.12, 0.04, 0.02),
    "dob": (0.95, 0.04, 0.01),
    "address": (0.85, 0.11, 0.03, 0.01),
}


def _with_m(levels: list[Any], comparison: str) -> list[Any]:
    """Attach m priors to the non-null levels (the first level of each list is the null level)."""
    priors = M_PRIORS[comparison]
    shaped = [levels[0]]
    for level, m_probability in zip(levels[1:], priors, strict=True):
        shaped.append(level.configure(m_probability=m_probability))
    return shaped


def comparisons() -> list[Any]:
    first_name = cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=_with_m(
            [
                cll.NullLevel("first_name"),
                cll.ExactMatchLevel("first_name", term_frequency_adjustments=True).configure(label_for_charts="exact"),
                cll.ArrayIntersectLevel("first_forms", min_intersection=1).configure(label_for_charts="nickname"),
                cll.JaroWinklerLevel("first_name", 0.9).configure(label_for_charts="fuzzy"),
                cll.CustomLevel("substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)", "initial"),
                cll.ElseLevel().configure(label_for_charts="different"),
            ],
            "first_name",
        ),
    )
    last_name = cl.CustomComparison(
        output_column_name="last_name",
        comparison_levels=_with_m(
            [
                cll.NullLevel("last_name"),
                cll.ExactMatchLevel("last_name", term_frequency_adjustments=True).configure(label_for_charts="exact"),
                cll.ArrayIntersectLevel("surname_tokens", min_intersection=1).configure(label_for_charts="one_surname"),
                cll.JaroWinklerLevel("last_name", 0.9).configure(label_for_charts="fuzzy"),
                cll.ElseLevel().configure(label_for_charts="different"),
            ],
            "last_name",
        ),
    )
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=_with_m(
            [
                cll.NullLevel("dob"),
                cll.ExactMatchLevel("dob").configure(label_for_charts="exact"),
                cll.CustomLevel(
                    "damerau_levenshtein(dob_l, dob_r) <= 1 OR (substr(dob_l, 1, 4) = substr(dob_r, 1, 4) "
                    "AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2))",
                    "keying_error",
                ),
                cll.ElseLevel().configure(label_for_charts="different"),
            ],
            "dob",
        ),
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=_with_m(
            [
                cll.CustomLevel("house_number_l IS NULL OR house_number_r IS NULL", "null").configure(
                    is_null_level=True
                ),
                cll.CustomLevel(
                    f"house_number_l = house_number_r AND street_name_l = street_name_r AND {ADDRESS_PLACE_AGREES}",
                    "exact",
                ),
                cll.CustomLevel(
                    "house_number_l = house_number_r AND jaro_winkler_similarity(street_name_l, street_name_r) >= 0.88"
                    f" AND {ADDRESS_PLACE_AGREES}",
                    "street_typo",
                ),
                cll.CustomLevel("zip5_l = zip5_r", "zip_only"),
                cll.ElseLevel().configure(label_for_charts="different"),
            ],
            "address",
        ),
    )
    return [first_name, last_name, dob, address]


def blocking_rules() -> list[Any]:
    """Candidate pairs: any one rule suffices. The address rule is what corroboration needs."""
    return [
        block_on("zip5", "house_number"),
        block_on("surname_tokens[1]", "dob"),
        block_on("first_name", "last_name", "state"),
        block_on("tin"),
    ]


def settings_creator(link_type: str, probability_two_random_records_match: float) -> SettingsCreator:
    return SettingsCreator(
        link_type=link_type,  # type: ignore[arg-type]
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=blocking_rules(),
        probability_two_random_records_match=probability_two_random_records_match,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["suffix", "tin"],
    )


def model_version(model: dict[str, Any]) -> str:
    canonical = json.dumps(model, sort_keys=True, separators=(",", ":"))
    return "model-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]
