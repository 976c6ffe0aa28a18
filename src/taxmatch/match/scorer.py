"""The fitted Splink model compiled to one SQL scoring query, for batch and on-demand alike.

Splink's `predict()` rebuilds its pipeline (blocking, term-frequency tables, a dozen CTEs)
on every call: fine for a large batch, 0.8 s for a single lookup. We keep Splink for what
it is best at — the model's levels and its fitted m/u parameters — and compile exactly
those into SQL once per model version, using Splink's own SQL generators (pinned Splink
5.0.0), so a pair gets the same gamma values and the same match weight Splink would give
it (a test compares the two on every blocked pair of a synthetic batch).

The CTEs expect a relation `scored_pairs_input` with every model input column twice,
suffixed `_l` (the request) and `_r` (the return), plus `tf_<column>_l` / `tf_<column>_r`
term frequencies for the columns with term-frequency adjustment.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class CompiledScorer:
    comparison_names: tuple[str, ...]
    term_frequency_columns: tuple[str, ...]
    level_labels: dict[str, dict[int, str]]
    # `CASE ... END as gamma_<name>` for each comparison, over `<column>_l` / `<column>_r`.
    case_statements: dict[str, str]
    term_frequency_select: str
    gamma_select: str
    gamma_names: str
    match_weight: str

    def common_table_expressions(self, carried_columns: tuple[str, ...]) -> str:
        """CTEs to follow a `scored_pairs_input AS (...)` one; they define `scored_pairs`.

        `carried_columns` of `scored_pairs_input` pass through to `scored_pairs` untouched, so a
        caller needs no join back to the pair input for what it wants beside the scores.
        """
        carried = ", ".join(carried_columns)
        return f"""with_gammas AS (
  SELECT {carried}, {self.term_frequency_select}{self.gamma_select}
  FROM scored_pairs_input
), with_weight AS (
  SELECT {carried}, {self.gamma_names}, {self.match_weight} AS match_weight
  FROM with_gammas
), scored_pairs AS (
  SELECT {carried}, {self.gamma_names}, match_weight,
    CASE WHEN match_weight >= 0 THEN 1.0 / (1.0 + power(cast(2 AS float8), -match_weight))
         ELSE power(cast(2 AS float8), match_weight) / (1.0 + power(cast(2 AS float8), match_weight))
    END AS match_probability
  FROM with_weight
)"""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CompiledScorer:
        fields = json.loads(text)
        return cls(
            comparison_names=tuple(fields["comparison_names"]),
            term_frequency_columns=tuple(fields["term_frequency_columns"]),
            # JSON object keys are strings; the gamma values are ints.
            level_labels={
                name: {int(gamma): label for gamma, label in labels.items()}
                for name, labels in fields["level_labels"].items()
            },
            case_statements=dict(fields["case_statements"]),
            term_frequency_select=fields["term_frequency_select"],
            gamma_select=fields["gamma_select"],
            gamma_names=fields["gamma_names"],
            match_weight=fields["match_weight"],
        )


# What a compiled scorer depends on besides the model: the Splink that generated its SQL and
# this module's code. A workspace keeps compiled scorers under this key (with the model version).
_COMPILER_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def compiled_scorer_key(model_version: str) -> str:
    return f"{model_version}|splink-{importlib.metadata.version('splink')}|scorer-{_COMPILER_DIGEST}"


def _level_labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    """Splink numbers the levels of a comparison from the bottom (else = 0); null is -1."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in model["comparisons"]:
        non_null = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        mapping = {-1: "missing"}
        for position, level in enumerate(non_null):
            mapping[len(non_null) - 1 - position] = str(level.get("label_for_charts", ""))
        labels[comparison["output_column_name"]] = mapping
    return labels


# `damerau_levenshtein(x, y) <= k` as a whole operand: after `(`, AND, OR, NOT or WHEN and before
# `)`, `,`, AND, OR, THEN or the end, so that nothing binds tighter to either side. The bound is a
# literal or the long-line rule of match/levels.py (`CASE WHEN least(length(x), length(y)) >= n
# THEN a ELSE b END`). A condition written otherwise is left as it is: slower, never different.
# An operand: a column, or a column with its spaces removed (the given-name levels compare so).
_OPERAND = r"(?:\"?\w+\"?|replace\(\"?\w+\"?, ' ', ''\))"
_EDIT_DISTANCE_AT_MOST = re.compile(
    r"(?:(?<=\()|(?<=\bAND )|(?<=\bOR )|(?<=\bNOT )|(?<=\bWHEN ))"
    rf"damerau_levenshtein\((?P<left>{_OPERAND}), (?P<right>{_OPERAND})\) <= "
    r"(?P<bound>(?P<literal>\d+)"
    r"|CASE WHEN least\(length\(\"?\w+\"?\), length\(\"?\w+\"?\)\) >= \d+"
    r" THEN (?P<then>\d+) ELSE (?P<otherwise>\d+) END)"
    r"(?=\)|,|\s+(?:AND|OR|THEN)\b|\s*$)"
)


def _guarded_edit_distance(match: re.Match[str]) -> str:
    left, right, bound = match["left"], match["right"], match["bound"]
    widest = match["literal"] or str(max(int(match["then"]), int(match["otherwise"])))
    return (
        f"({left} = {right} OR (abs(strlen({left}) - strlen({right})) <= {widest}"
        f" AND damerau_levenshtein({left}, {right}) <= {bound}))"
    )


# `array_length(list_intersect(x, y)) >= 1` as a whole operand (bounded as above): Splink's array
# intersection level, and ours.
_LISTS_SHARE_AN_ELEMENT = re.compile(
    r"(?:(?<=\()|(?<=\bAND )|(?<=\bOR )|(?<=\bNOT )|(?<=\bWHEN ))"
    r"array_length\(list_intersect\((?P<left>\"?\w+\"?), (?P<right>\"?\w+\"?)\)\) >= 1"
    r"(?=\)|,|\s+(?:AND|OR|THEN)\b|\s*$)"
)


def _any_shared(match: re.Match[str]) -> str:
    left, right = match["left"], match["right"]
    # list_has_any gives NULL where the intersection of a list with a NULL one is empty (FALSE):
    # that case keeps the original.
    return (
        f"(CASE WHEN {right} IS NULL THEN array_length(list_intersect({left}, {right})) >= 1"
        f" ELSE list_has_any({left}, {right}) END)"
    )


def share_an_element(sql: str) -> str:
    """`sql` with `array_length(list_intersect(x, y)) >= 1` asked without building the intersection.

    `list_has_any` stops at the first shared element and builds no list: half the cost over a
    batch's pairs. Same value for every pair, NULLs included (tests/match/test_scorer_sql.py).
    """
    return _LISTS_SHARE_AN_ELEMENT.sub(_any_shared, sql)


def guard_edit_distances(sql: str) -> str:
    """`sql` with each `damerau_levenshtein(x, y) <= k` computed only where it can hold.

    DuckDB computes the edit distance over the bytes of the two strings (~1-4 us a pair), the
    largest cost of a batch's scoring query; equal strings are at distance 0, and each edit
    changes the length in bytes by at most one, so strings whose byte lengths differ by more
    than k are farther apart than k. Both checks are cheap, and the verdict is the same for
    every pair, NULLs included (a NULL side gives NULL either way): tests/match/test_scorer_sql.py
    holds them to it over awkward strings, and to DuckDB counting bytes.
    """
    return _EDIT_DISTANCE_AT_MOST.sub(_guarded_edit_distance, sql)


def compile_scorer(model: dict[str, Any]) -> CompiledScorer:
    # Imported here: a workspace keeps what this compiles (`compiled_scorer_key`), so a batch or
    # a lookup usually needs neither Splink's import (~0.1 s) nor the compilation (~0.08 s).
    from splink.internals.misc import prob_to_match_weight
    from splink.internals.settings_creator import SettingsCreator

    settings = SettingsCreator.from_path_or_dict(copy.deepcopy(model)).get_settings("duckdb")
    gamma_columns: list[str] = []
    weight_terms: list[str] = []
    tf_columns: list[str] = []
    names: list[str] = []
    for comparison in settings.comparisons:
        gamma = comparison._gamma_column_name
        names.append(comparison.output_column_name)
        gamma_columns.append(share_an_element(guard_edit_distances(comparison._case_statement)))
        levels = comparison.comparison_levels
        weight_terms.append("CASE " + " ".join(level._match_weight_sql(gamma) for level in levels) + " END")
        if comparison._has_tf_adjustments:
            weight_terms.append(
                "CASE " + " ".join(level._tf_adjustment_sql(gamma, levels) for level in levels) + " END"
            )
            for level in levels:
                if level._has_tf_adjustments:
                    tf_columns.append(level._tf_adjustment_input_column.input_name)
    prior_weight = prob_to_match_weight(settings._probability_two_random_records_match)
    match_weight = f"cast({prior_weight} as float8) + " + " + ".join(weight_terms)
    gammas = ",\n    ".join(gamma_columns)
    gamma_names = ", ".join(f"gamma_{name}" for name in names)
    unique_tf_columns = tuple(dict.fromkeys(tf_columns))
    tf_names = "".join(f"tf_{column}_l, tf_{column}_r, " for column in unique_tf_columns)
    case_statements = dict(zip(names, gamma_columns, strict=True))
    return CompiledScorer(
        tuple(names),
        unique_tf_columns,
        _level_labels(model),
        case_statements,
        tf_names,
        gammas,
        gamma_names,
        match_weight,
    )
