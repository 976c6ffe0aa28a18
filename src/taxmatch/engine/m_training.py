"""Learn m from a file of requests (`taxmatch model train`): DuckDB counts, `match.em` estimates.

For each training session (`TRAINING_SESSIONS`: a blocking key and the comparisons it may
estimate) the requests are joined to the master profiles on that key alone, every pair's level
pattern is computed with the scoring model's own CASE statements, and the distinct patterns are
counted. EM then runs on the counts; a comparison takes the m of the session that can see it.
The requests are also split in two halves (by their row number) and estimated apart, so that
the report says how far m moves with the sample: an estimate that moves more than
`STABLE_WITHIN` is reported as unstable.
"""

from __future__ import annotations

import copy
from typing import Any

import duckdb

from taxmatch.match.em import (
    SessionReport,
    TrainingReport,
    TrainingSession,
    estimate_m,
    largest_difference,
)
from taxmatch.match.model import MODEL_INPUT_COLUMNS
from taxmatch.match.scorer import CompiledScorer

# Pairs at one ZIP and house number estimate every comparison but the address; pairs with the
# same given name, surname and state estimate the address (and see names agree by construction).
TRAINING_SESSIONS: tuple[TrainingSession, ...] = (
    TrainingSession("key_address", ("first_name", "last_name", "middle_initial", "dob", "tin"), ("address",)),
    TrainingSession("key_name", ("address",), ("first_name", "last_name")),
)
# Below this many pairs a session's estimate is noise: the priors are kept for its comparisons.
MIN_TRAINING_PAIRS = 1_000
STABLE_WITHIN = 0.05


def _pattern_counts_by_half(
    connection: duckdb.DuckDBPyConnection,
    scorer: CompiledScorer,
    requests_relation: str,
    master_relation: str,
    key: str,
) -> tuple[list[tuple[tuple[int, ...], int]], list[tuple[tuple[int, ...], int]]]:
    """The level patterns of the pairs `key` blocks, counted for each half of the requests (by row
    number): one join, whose halves also add up to the whole."""
    sides = ", ".join(
        f"l.{column} AS {column}_l, r.{column} AS {column}_r" for column in MODEL_INPUT_COLUMNS if column != "unique_id"
    )
    cases = ", ".join(scorer.case_statements[name] for name in scorer.comparison_names)
    gammas = ", ".join(f"gamma_{name}" for name in scorer.comparison_names)
    rows = connection.execute(
        f"""SELECT {gammas}, half, count(*) FROM (
                SELECT {cases}, half FROM (
                    SELECT {sides}, l.unique_id % 2 AS half FROM {requests_relation} l
                    JOIN {master_relation} r ON l.{key} = r.{key}))
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    width = len(scorer.comparison_names)
    halves: tuple[list[tuple[tuple[int, ...], int]], list[tuple[tuple[int, ...], int]]] = ([], [])
    for row in rows:
        halves[int(row[width])].append((tuple(int(value) for value in row[:width]), int(row[width + 1])))
    return halves


def _whole(
    halves: tuple[list[tuple[tuple[int, ...], int]], list[tuple[tuple[int, ...], int]]],
) -> list[tuple[tuple[int, ...], int]]:
    counts: dict[tuple[int, ...], int] = {}
    for half in halves:
        for pattern, count in half:
            counts[pattern] = counts.get(pattern, 0) + count
    return sorted(counts.items())


def _parameters(model: dict[str, Any], scorer: CompiledScorer, which: str) -> dict[str, dict[int, float]]:
    """m or u of the model's non-null levels, by comparison and gamma."""
    found: dict[str, dict[int, float]] = {}
    for comparison in model["comparisons"]:
        name = str(comparison["output_column_name"])
        by_label = {str(level.get("label_for_charts")): level for level in comparison["comparison_levels"]}
        found[name] = {
            gamma: float(by_label[label][which])
            for gamma, label in scorer.level_labels[name].items()
            if gamma >= 0 and by_label[label].get(which) is not None
        }
    return found


def train_m(
    connection: duckdb.DuckDBPyConnection,
    model: dict[str, Any],
    scorer: CompiledScorer,
    requests_relation: str,
    master_relation: str,
) -> tuple[dict[str, Any], TrainingReport]:
    """A copy of `model` with m learned from the requests in `requests_relation`, and the report."""
    u = _parameters(model, scorer, "u_probability")
    prior = _parameters(model, scorer, "m_probability")
    names = scorer.comparison_names
    learned = {name: dict(values) for name, values in prior.items()}
    reports = []
    for session in TRAINING_SESSIONS:
        estimated = tuple(name for name in session.estimates if name in names)

        halves = _pattern_counts_by_half(connection, scorer, requests_relation, master_relation, session.key)
        whole, first, second = (
            estimate_m(patterns, names, u, prior, estimated, ignored=session.decided_by_key)
            for patterns in (_whole(halves), *halves)
        )
        differ = largest_difference(
            {name: first.m[name] for name in estimated}, {name: second.m[name] for name in estimated}
        )
        used = whole.pairs >= MIN_TRAINING_PAIRS and whole.converged
        if used:
            for name in estimated:
                learned[name] = whole.m[name]
        reports.append(
            SessionReport(
                session.key,
                estimated,
                whole.pairs,
                whole.match_share,
                whole.iterations,
                whole.converged,
                differ,
                used,
            )
        )
    trained = copy.deepcopy(model)
    changes: dict[str, dict[str, tuple[float, float]]] = {}
    for comparison in trained["comparisons"]:
        name = str(comparison["output_column_name"])
        by_label = {str(level.get("label_for_charts")): level for level in comparison["comparison_levels"]}
        for gamma, label in scorer.level_labels[name].items():
            if gamma < 0 or gamma not in learned[name]:
                continue
            changes.setdefault(name, {})[label] = (prior[name][gamma], learned[name][gamma])
            by_label[label]["m_probability"] = learned[name][gamma]
    requests = connection.execute(f"SELECT count(DISTINCT request_index) FROM {requests_relation}").fetchone()
    return trained, TrainingReport(int(requests[0]) if requests else 0, tuple(reports), changes)
