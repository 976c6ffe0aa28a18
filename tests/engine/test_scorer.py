"""The compiled scorer gives every blocked pair exactly the probability Splink's predict() gives it."""

from __future__ import annotations

import dataclasses
import datetime
import math
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from taxmatch.engine import duckdb_tables
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.match.decide import MIN_CANDIDATE_WEIGHT
from taxmatch.match.scorer import CompiledScorer, compiled_scorer_key
from taxmatch.records import RequestRecord
from taxmatch.synth import generate

from splink_oracle import splink_reference_scores

if TYPE_CHECKING:
    from conftest import FittedEngine


@pytest.fixture(scope="module")
def engine_and_requests(
    tmp_path_factory: pytest.TempPathFactory, fitted_engine: FittedEngine
) -> tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]:
    engine, readable = fitted_engine(tmp_path_factory.mktemp("scorer"), people=1_500, requests=600, seed=11)
    return engine, [(index, item) for index, item in readable if item.first_name and item.last_name]


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
    reference = splink_reference_scores(engine, requests)
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


def test_a_compiled_scorer_is_kept_in_the_workspace_and_read_back_whole(
    engine_and_requests: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, _ = engine_and_requests
    version, compiled = engine._scorer()
    assert CompiledScorer.from_json(compiled.to_json()) == compiled
    kept = engine.connection.execute("SELECT cache_key FROM compiled_scorers").fetchall()
    assert (compiled_scorer_key(version),) in kept
    monkeypatch.setattr(duckdb_tables, "compile_scorer", _no_compiling)
    assert DuckDBEngine(engine.connection)._scorer() == (version, compiled)


def _no_compiling(model: object) -> None:
    raise AssertionError("compiled again: the kept scorer was not read")


def test_a_batch_imports_no_splink(tmp_path: Path) -> None:
    # Splink builds and fits the model; scoring reads the model and its compiled SQL from the
    # workspace, so a batch (a fresh process) does without Splink's ~0.1 s of imports.
    data, home = tmp_path / "data", tmp_path / "home"
    generate(data, people=400, requests=200, seed=8, as_of=datetime.date(2026, 11, 25))  # a batch, not point reads
    run = [sys.executable, "-c", _BATCH_WITHOUT_SPLINK, str(home), str(data / "requests.csv"), str(tmp_path / "out")]
    taxmatch = Path(sys.executable).with_name("taxmatch")
    subprocess.run([str(taxmatch), "--home", str(home), "master", "load", str(data / "master.csv")],
                   check=True, capture_output=True)  # fmt: skip
    finished = subprocess.run(run, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip().splitlines()[-1] == "no splink"


_BATCH_WITHOUT_SPLINK = """
import sys
from taxmatch.cli import app
try:
    app(["--home", sys.argv[1], "batch", "run", sys.argv[2], "--agency", "ICE", "--as-of", "2026-11-25",
         "--out", sys.argv[3]])
except SystemExit as leaving:
    assert not leaving.code, leaving.code
print(sorted(name for name in sys.modules if name.split(".")[0] == "splink") or "no splink")
"""


def test_profiles_without_their_term_frequencies_score_alike(tmp_path: Path, fitted_engine: FittedEngine) -> None:
    # A workspace loaded before profiles carried their term frequencies joins them per pair.
    engine, requests = fitted_engine(tmp_path, people=300, requests=150, seed=12)
    with_columns = engine.score(requests)
    engine.connection.execute(
        "CREATE TABLE profiles AS SELECT * EXCLUDE (tf_first_name, tf_last_name) FROM master_profiles"
    )
    engine.connection.execute("DROP TABLE master_profiles")  # its indexes forbid dropping a column
    engine.connection.execute("ALTER TABLE profiles RENAME TO master_profiles")
    older = DuckDBEngine(engine.connection)
    _, scorer = older._scorer()
    assert not older._profiles_have_term_frequencies(scorer)
    assert older.score(requests) == with_columns
    assert len(with_columns) > len(requests)
