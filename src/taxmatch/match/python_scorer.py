"""The compiled scorer (`match.scorer`) in Python, for the few pairs of an on-demand lookup.

Same levels (`model.PYTHON_LEVELS`, the twins of the SQL conditions), same fitted weights
(read from Splink's own level objects, as the SQL compiler reads them), same order of
summation, so a pair gets the same gamma values and match weight as in a batch; a test holds
the two scorers to each other on every pair of a synthetic batch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taxmatch.match.candidates import CandidatePair
from taxmatch.match.levels import PYTHON_LEVELS, Condition, Side


@dataclass(frozen=True)
class _TermFrequency:
    column: str
    weight: float
    log2_u_exact: float
    minimum_u: float


@dataclass(frozen=True)
class _Level:
    label: str
    condition: Condition | None
    match_weight: float
    term_frequency: _TermFrequency | None


@dataclass(frozen=True)
class ScoredPair:
    match_weight: float
    match_probability: float
    levels: dict[str, str]


class PythonScorer:
    def __init__(self, model: dict[str, Any], term_frequencies: Mapping[str, Mapping[str, float]]) -> None:
        from splink.internals.misc import prob_to_match_weight
        from splink.internals.settings_creator import SettingsCreator

        settings = SettingsCreator.from_path_or_dict(copy.deepcopy(model)).get_settings("duckdb")
        self.prior_weight = float(prob_to_match_weight(settings._probability_two_random_records_match))
        self.term_frequencies = term_frequencies
        self.comparisons: list[tuple[str, list[_Level]]] = []
        for comparison in settings.comparisons:
            name = comparison.output_column_name
            twins = PYTHON_LEVELS[name]
            splink_levels = comparison.comparison_levels
            if len(twins) != len(splink_levels):
                raise ValueError(f"comparison {name}: {len(splink_levels)} levels in the model, {len(twins)} in Python")
            levels: list[_Level] = []
            for (label, condition), level in zip(twins, splink_levels, strict=True):
                expected = "missing" if level.is_null_level else level.label_for_charts
                if label != expected:
                    raise ValueError(f"comparison {name}: Python level {label!r} where the model has {expected!r}")
                term_frequency = None
                if level._has_tf_adjustments and level._tf_adjustment_weight != 0:
                    term_frequency = _TermFrequency(
                        column=level._tf_adjustment_input_column.input_name,
                        weight=float(level._tf_adjustment_weight),
                        log2_u_exact=math.log2(level._u_probability_corresponding_to_exact_match(splink_levels)),
                        minimum_u=float(level._tf_minimum_u_value),
                    )
                weight = 0.0 if level.is_null_level else float(level._match_weight)
                levels.append(_Level(label, condition, weight, term_frequency))
            self.comparisons.append((name, levels))
        # What `score` walks: each comparison with whether any of its levels adjusts for term
        # frequency, decided here once rather than for every pair.
        self._scoring_plan: tuple[tuple[str, tuple[_Level, ...], bool], ...] = tuple(
            (name, tuple(levels), any(level.term_frequency is not None for level in levels))
            for name, levels in self.comparisons
        )

    def level_weights(self) -> dict[str, dict[str, float]]:
        """Each comparison's fitted match weight (log2 Bayes factor) per level label, before any
        term-frequency adjustment: what an explanation shows beside the levels of a pair."""
        return {name: {level.label: level.match_weight for level in levels} for name, levels in self.comparisons}

    def _term_frequency_weight(self, adjustment: _TermFrequency, left: Side, right: Side) -> float:
        table = self.term_frequencies[adjustment.column]
        left_tf = table.get(left[adjustment.column]) if left[adjustment.column] is not None else None
        right_tf = table.get(right[adjustment.column]) if right[adjustment.column] is not None else None
        first = left_tf if left_tf is not None else right_tf
        if first is None:
            return 0.0
        second = right_tf if right_tf is not None else left_tf
        assert second is not None
        return adjustment.weight * (adjustment.log2_u_exact - math.log2(max(first, second, adjustment.minimum_u)))

    def candidate_pair(self, request_index: int, return_id: int, request: Side, candidate: Side) -> CandidatePair:
        """A request row scored against a master profile, as the decision rule reads the pair."""
        scored = self.score(request, candidate)
        return CandidatePair(
            request_index=request_index,
            return_id=return_id,
            tin=str(candidate["tin"]),
            match_probability=scored.match_probability,
            match_weight=scored.match_weight,
            first_name_level=scored.levels["first_name"],
            last_name_level=scored.levels["last_name"],
            dob_level=scored.levels["dob"],
            address_level=scored.levels["address"],
            tin_level=scored.levels["tin"],
            request_suffix=request["suffix"] or "",
            return_suffix=candidate["suffix"] or "",
            request_tin=request["tin"] or "",
        )

    def score(self, left: Side, right: Side) -> ScoredPair:
        """Left is the request, right the return, both with the model input columns."""
        total = self.prior_weight
        labels: dict[str, str] = {}
        for name, levels, adjusts_term_frequency in self._scoring_plan:
            chosen = levels[-1]
            for level in levels:
                if level.condition is None or level.condition(left, right):
                    chosen = level
                    break
            labels[name] = chosen.label
            total += chosen.match_weight
            if adjusts_term_frequency:
                # 0.0 added where the chosen level has no adjustment: the SQL's sum has that term too.
                total += (
                    self._term_frequency_weight(chosen.term_frequency, left, right)
                    if chosen.term_frequency is not None
                    else 0.0
                )
        if total >= 0:
            probability = 1.0 / (1.0 + math.pow(2.0, -total))
        else:
            probability = math.pow(2.0, total) / (1.0 + math.pow(2.0, total))
        return ScoredPair(total, probability, labels)
