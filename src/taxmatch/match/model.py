"""The linkage model: Splink 5 comparisons, blocking rules, fitting and versioning.

One record on each side has the same columns (`MODEL_INPUT_COLUMNS`): a request (or
one of its prior addresses) on the left, one filed return on the right. A pair's match
probability says "this return belongs to the person requested"; the decision rule
(`match.decide`) turns pairs into one answer per request.

Parameters:
- u (chance agreement) is estimated by Splink from random pairs of the master file itself:
  the master is the population a request is matched against, so it is the right sample.
- m (agreement among true matches) is a documented prior (`levels.COMPARISONS`) for how a *request* differs from
  the return of the same person (nicknames, typos, a keyed-in date). It cannot be learnt
  from the master alone, whose rows of one taxpayer agree far more than a request does.
- lambda (prior that a request and a random return match) is 1 / number of taxpayers.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from taxmatch.match.levels import COMPARISON_SHAPE, COMPARISONS

if TYPE_CHECKING:
    from splink import SettingsCreator

__all__ = [
    "COMPARISON_SHAPE",
    "MODEL_INPUT_COLUMNS",
    "blocking_rules",
    "comparison_shape",
    "comparisons",
    "model_version",
    "settings_creator",
]

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
    "street_bare",
    "street_dirs",
    "street_type",
    "unit",
    "zip5",
    "city",
    "state",
)


def comparisons(taxpayers: int) -> list[Any]:
    """Splink's comparisons, generated from `levels.COMPARISONS`."""
    # Splink is imported where a model is built, not where one is used: a batch or a lookup
    # reads the fitted model and its compiled SQL from the workspace (0.1 s of imports saved).
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    built = []
    for comparison in COMPARISONS:
        levels: list[Any] = [cll.CustomLevel(comparison.null_sql, comparison.null_label).configure(is_null_level=True)]
        for level in comparison.levels:
            creator = cll.ElseLevel() if level.sql is None else cll.CustomLevel(level.sql)
            settings: dict[str, Any] = {"label_for_charts": level.label, "m_probability": level.m_prior}
            if level.term_frequency_column is not None:
                # The level is its own exact match (the given name's compares spaces aside, which
                # Splink would not recognise as one): the adjustment is against its own u.
                settings.update(
                    tf_adjustment_column=level.term_frequency_column,
                    tf_adjustment_weight=1.0,
                    disable_tf_exact_match_detection=True,
                )
            if level.fixed_u is not None:
                settings.update(u_probability=level.fixed_u(taxpayers), fix_u_probability=True)
            levels.append(creator.configure(**settings))
        built.append(cl.CustomComparison(output_column_name=comparison.name, comparison_levels=levels))
    return built


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
