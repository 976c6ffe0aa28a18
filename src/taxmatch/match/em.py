"""m learned from the requests themselves: expectation-maximisation over blocked pairs.

The m priors in `match.levels` say how a request usually differs from the return of the same
person; an agency's requests may differ otherwise (more typos, fewer dates of birth). EM reads
that from the requests: over the request-versus-master pairs of one blocking key, each pair is
a match with some probability (E step, from the current m, the master's u and the share of
matches), and m is re-estimated as the match-weighted share of pairs at each level (M step),
until m stops moving. This is Fellegi-Sunter's EM as Splink runs it, with u fixed (it comes from
random pairs of the master, which EM over blocked pairs would bias).

A comparison on the columns of the blocking key is not estimated from that key's pairs: they
agree on it by construction. So the engine runs one session per key (`TRAINING_SESSIONS`),
and each comparison takes its m from the session that can see it.

Pure Python over pattern counts (the engine counts the distinct level patterns in SQL): a
session is a few thousand patterns whatever the number of pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Gamma -1 is a null level (one side missing): it says nothing and is left out of m.
NULL_GAMMA = -1
# Floor for an estimated m, so that a level no match showed in this sample keeps finite weight.
MIN_M = 1e-6
# The starting m (the priors) count as this many matched pairs in every M step (a Dirichlet prior,
# maximum a posteriori EM): a level that a few thousand requests never showed (a transliteration
# in a population without one) keeps part of its prior instead of dropping to a large penalty,
# and a small sample moves m little.
PRIOR_PSEUDO_PAIRS = 100.0


@dataclass(frozen=True)
class TrainingSession:
    """One blocking key's pairs; the comparisons whose m they may estimate; the comparisons the key
    decides (every pair agrees on them by construction), which then say nothing in the E step."""

    key: str
    estimates: tuple[str, ...]
    decided_by_key: tuple[str, ...]


@dataclass(frozen=True)
class Estimate:
    """m per comparison and gamma (non-null levels, summing to 1), with how the EM went."""

    m: dict[str, dict[int, float]]
    match_share: float
    pairs: int
    iterations: int
    converged: bool


@dataclass(frozen=True)
class SessionReport:
    key: str
    estimated: tuple[str, ...]
    pairs: int
    match_share: float
    iterations: int
    converged: bool
    halves_differ_by: float
    used: bool


@dataclass(frozen=True)
class TrainingReport:
    requests: int
    sessions: tuple[SessionReport, ...]
    # comparison -> level label -> (prior m, learned m)
    changes: dict[str, dict[str, tuple[float, float]]]


def estimate_m(
    patterns: Sequence[tuple[tuple[int, ...], int]],
    comparisons: Sequence[str],
    u: Mapping[str, Mapping[int, float]],
    m_start: Mapping[str, Mapping[int, float]],
    estimated: Sequence[str],
    *,
    ignored: Sequence[str] = (),
    max_iterations: int = 100,
    tolerance: float = 1e-6,
) -> Estimate:
    """EM over `patterns` (each a gamma per comparison, in `comparisons` order, and its count).

    Only the comparisons in `estimated` get new m; the others keep `m_start` and still count in
    the E step, but for `ignored` ones: those a blocking key decided, whose agreement in every pair
    would otherwise call every pair a match (and m would become the distribution of all pairs).
    """
    m = {name: dict(m_start[name]) for name in comparisons}
    pairs = sum(count for _, count in patterns)
    if pairs == 0:
        return Estimate(m, 0.0, 0, 0, False)
    positions = {name: index for index, name in enumerate(comparisons)}
    no_u: dict[int, float] = {}
    # A comparison left out of the E step is given no u: as for a level without u, it adds nothing.
    evidence_u = {name: (no_u if name in ignored else u[name]) for name in comparisons}
    share = 0.5
    converged = False
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        weights = [_match_probability(pattern, comparisons, m, evidence_u, share) for pattern, _ in patterns]
        matched = sum(weight * count for weight, (_, count) in zip(weights, patterns, strict=True))
        new_share = min(max(matched / pairs, 1e-9), 1 - 1e-9)
        change = abs(new_share - share)
        for name in estimated:
            position = positions[name]
            totals: dict[int, float] = {gamma: 0.0 for gamma in m[name]}
            for weight, (pattern, count) in zip(weights, patterns, strict=True):
                gamma = pattern[position]
                if gamma != NULL_GAMMA and gamma in totals:
                    totals[gamma] += weight * count
            start = m_start[name]
            totals = {gamma: value + PRIOR_PSEUDO_PAIRS * start.get(gamma, 0.0) for gamma, value in totals.items()}
            total = sum(totals.values())
            if total <= 0:
                continue
            new = {gamma: max(value / total, MIN_M) for gamma, value in totals.items()}
            norm = sum(new.values())
            new = {gamma: value / norm for gamma, value in new.items()}
            change = max(change, max(abs(new[gamma] - m[name][gamma]) for gamma in new))
            m[name] = new
        share = new_share
        if change < tolerance:
            converged = True
            break
    return Estimate(m, share, pairs, iterations, converged)


def _match_probability(
    pattern: tuple[int, ...],
    comparisons: Sequence[str],
    m: Mapping[str, Mapping[int, float]],
    u: Mapping[str, Mapping[int, float]],
    share: float,
) -> float:
    log_odds = math.log(share) - math.log(1 - share)
    for name, gamma in zip(comparisons, pattern, strict=True):
        if gamma == NULL_GAMMA or gamma not in u[name]:
            continue  # a level the model has no u for adds no weight when scoring either
        log_odds += math.log(max(m[name][gamma], MIN_M)) - math.log(max(u[name][gamma], 1e-300))
    if log_odds > 0:
        return 1.0 / (1.0 + math.exp(-log_odds))
    odds = math.exp(log_odds)
    return odds / (1.0 + odds)


def largest_difference(first: Mapping[str, Mapping[int, float]], second: Mapping[str, Mapping[int, float]]) -> float:
    """The largest absolute difference in m between two estimates (how stable an estimate is)."""
    return max(
        (abs(first[name][gamma] - second[name].get(gamma, 0.0)) for name in first for gamma in first[name]),
        default=0.0,
    )
