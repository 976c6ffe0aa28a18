"""EM over level-pattern counts (`match.em`): it recovers m from pairs drawn from a known model."""

from __future__ import annotations

import random

import pytest

from taxmatch.match import em
from taxmatch.match.em import estimate_m, largest_difference

COMPARISONS = ("name", "dob", "address")
# gamma -> probability, for matches (m) and non-matches (u); gamma 0 is the lowest level.
TRUE_M = {"name": {2: 0.6, 1: 0.3, 0: 0.1}, "dob": {1: 0.7, 0: 0.3}, "address": {2: 0.5, 1: 0.3, 0: 0.2}}
U = {"name": {2: 0.01, 1: 0.04, 0: 0.95}, "dob": {1: 0.02, 0: 0.98}, "address": {2: 0.05, 1: 0.15, 0: 0.8}}
PRIOR = {"name": {2: 0.9, 1: 0.05, 0: 0.05}, "dob": {1: 0.95, 0: 0.05}, "address": {2: 0.8, 1: 0.1, 0: 0.1}}


def _draw(distribution: dict[int, float], generator: random.Random) -> int:
    return generator.choices(list(distribution), weights=list(distribution.values()))[0]


def _patterns(matches: int, non_matches: int, seed: int = 7) -> list[tuple[tuple[int, ...], int]]:
    generator = random.Random(seed)
    counts: dict[tuple[int, ...], int] = {}
    for table, how_many in ((TRUE_M, matches), (U, non_matches)):
        for _ in range(how_many):
            pattern = tuple(_draw(table[name], generator) for name in COMPARISONS)
            counts[pattern] = counts.get(pattern, 0) + 1
    return sorted(counts.items())


def test_em_recovers_m_and_the_share_of_matches_from_unlabelled_pairs() -> None:
    estimate = estimate_m(_patterns(20_000, 30_000), COMPARISONS, U, PRIOR, COMPARISONS)
    assert estimate.converged
    assert estimate.pairs == 50_000
    assert estimate.match_share == pytest.approx(0.4, abs=0.02)
    assert largest_difference(estimate.m, TRUE_M) < 0.03
    # Far from the priors it started at: the data, not the start, decided.
    assert largest_difference(estimate.m, PRIOR) > 0.2


def test_only_the_comparisons_asked_for_are_estimated() -> None:
    estimate = estimate_m(_patterns(20_000, 30_000), COMPARISONS, U, PRIOR, ("address",))
    assert estimate.m["name"] == PRIOR["name"] and estimate.m["dob"] == PRIOR["dob"]
    assert abs(estimate.m["address"][1] - TRUE_M["address"][1]) < 0.05


def test_a_small_sample_stays_near_the_priors_and_no_level_drops_to_nothing() -> None:
    # 40 pairs: the priors' pseudo-pairs outweigh them, and a level no pair showed keeps some m.
    patterns = [((2, 1, 2), 40)]
    estimate = estimate_m(patterns, COMPARISONS, U, PRIOR, COMPARISONS)
    assert all(value >= 0.5 * PRIOR["name"][gamma] for gamma, value in estimate.m["name"].items() if gamma != 2)
    assert all(abs(sum(levels.values()) - 1.0) < 1e-9 for levels in estimate.m.values())
    assert em.PRIOR_PSEUDO_PAIRS > 40


def test_null_levels_and_levels_without_u_add_no_evidence() -> None:
    with_nulls = [((2, em.NULL_GAMMA, 2), 10), ((0, em.NULL_GAMMA, 0), 10)]
    no_dob_u = {**U, "dob": {}}
    first = estimate_m(with_nulls, COMPARISONS, U, PRIOR, ("name",))
    second = estimate_m(with_nulls, COMPARISONS, no_dob_u, PRIOR, ("name",))
    assert first.m == second.m


def test_no_pairs_keep_the_priors() -> None:
    estimate = estimate_m([], COMPARISONS, U, PRIOR, COMPARISONS)
    assert estimate.m == PRIOR and not estimate.converged and estimate.pairs == 0


def test_a_comparison_the_blocking_key_decided_must_be_left_out_of_the_e_step() -> None:
    # Pairs blocked on the address all agree on it: counted as evidence, it calls every pair a match.
    blocked = [((name, dob, 2), count) for (name, dob, _), count in _patterns(20_000, 30_000)]
    collapsed = estimate_m(blocked, COMPARISONS, U, PRIOR, ("name", "dob"))
    assert collapsed.match_share > 0.95
    estimate = estimate_m(blocked, COMPARISONS, U, PRIOR, ("name", "dob"), ignored=("address",))
    assert estimate.match_share == pytest.approx(0.4, abs=0.02)
    assert largest_difference({name: estimate.m[name] for name in ("name", "dob")}, TRUE_M) < 0.03
