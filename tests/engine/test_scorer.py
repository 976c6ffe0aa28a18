"""The compiled scorer gives every blocked pair exactly the probability Splink's predict() gives it."""

from __future__ import annotations

import dataclasses
import datetime
import math

import duckdb
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.io.requests import read_requests
from taxmatch.match.decide import MIN_CANDIDATE_WEIGHT
from taxmatch.records import RequestRecord
from taxmatch.synth import generate


@pytest.fixture(scope="module")
def engine_and_requests(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]:
    data = tmp_path_factory.mktemp("scorer")
    generate(data, people=1_500, requests=600, seed=11, as_of=datetime.date(2026, 11, 25))
    engine = DuckDBEngine(duckdb.connect())
    engine.load_master([data / "master.csv"], lambda problem: None)
    engine.fit_model()
    requests = [
        (index, item)
        for index, item in enumerate(read_requests(data / "requests.csv"))
        if isinstance(item, RequestRecord) and item.first_name and item.last_name
    ]
    return engine, requests


def _ours(engine: DuckDBEngine, requests: list[tuple[int, RequestRecord]]) -> dict[tuple[int, str], list[float]]:
    """Our probabilities by (request input row, taxpayer); pairs carrying the same evidence are kept once."""
    pairs = engine.score(requests)
    # One input row per request here (no prior addresses), so the request index names the row.
    row_of = dict(engine.connection.execute("SELECT request_index, unique_id FROM request_inputs").fetchall())
    found: dict[tuple[int, str], list[float]] = {}
    for pair in pairs:
        found.setdefault((row_of[pair.request_index], pair.tin), []).append(pair.match_probability)
    return found


def test_same_probabilities_as_splink_predict(
    engine_and_requests: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    engine, requests = engine_and_requests
    reference = engine.splink_reference_scores(requests)
    ours = _ours(engine, requests)
    assert len(reference) > 1_000
    tin_of = dict(engine.connection.execute("SELECT return_id, tin FROM master_returns").fetchall())
    strongest: dict[tuple[int, str], float] = {}
    for (row, return_id), probability in reference.items():
        if probability in (0.0, 1.0):
            weight = math.inf if probability else -math.inf
        else:
            weight = math.log2(probability / (1.0 - probability))
        key = (row, tin_of[return_id])
        strongest[key] = max(weight, strongest.get(key, -math.inf))
    # We drop, before Python, the taxpayers no pair of which reaches MIN_CANDIDATE_WEIGHT; a weight
    # recovered from a probability is good to about 1e-9, so decide only away from the edge.
    kept = {key for key, weight in strongest.items() if weight - MIN_CANDIDATE_WEIGHT >= 1e-6}
    dropped = {key for key, weight in strongest.items() if weight - MIN_CANDIDATE_WEIGHT <= -1e-6}
    assert dropped, "the cut-off should drop some hopeless candidates"
    assert not dropped & set(ours), "taxpayers below the cut-off are dropped"
    for (row, return_id), probability in reference.items():
        key = (row, tin_of[return_id])
        if key in kept:
            assert key in ours, f"Splink blocks {key}, we do not"
            closest = min(abs(ours_probability - probability) for ours_probability in ours[key])
            assert closest < 1e-12, (key, probability, ours[key])


def test_on_demand_path_gives_the_batch_pairs_and_scores(
    engine_and_requests: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    engine, requests = engine_and_requests
    batch = engine.score(requests)
    one_by_one = [pair for request in requests for pair in engine.score([request])]
    # Equal to the last bit: same levels, same weights, same order of summation.
    assert one_by_one == batch


def test_prior_addresses_are_blocked_and_scored_alike_on_both_paths(
    engine_and_requests: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    engine, requests = engine_and_requests
    # Each request also names the previous address of the next one: two input rows per request.
    with_prior = [
        (index, dataclasses.replace(request, prior_addresses=(requests[(position + 1) % 80][1].address,)))
        for position, (index, request) in enumerate(requests[:80])
    ]
    batch = engine.score(with_prior)
    one_by_one = [pair for request in with_prior for pair in engine.score([request])]
    assert len(batch) > 80
    assert one_by_one == batch
