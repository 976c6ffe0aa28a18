"""A batch keeps what each request was decided from; explained from those rows, it reads as when it was decided."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from taxmatch import pipeline
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.explain import explanation_of
from taxmatch.io.requests import read_requests
from taxmatch.ledger import batch_explanations
from taxmatch.ledger.batch_explanations import ScoringRecorder, forget_batches, recorded_decision, save_scoring
from taxmatch.parallel import can_fork
from taxmatch.pipeline import decide_and_explain, decide_requests
from taxmatch.records import Outcome
from taxmatch.settings import Policy
from taxmatch.synth import generate

AS_OF = datetime.date(2026, 11, 25)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> tuple[DuckDBEngine, Path]:
    data: Path = tmp_path_factory.mktemp("batch-explanations")
    generate(data, people=800, requests=400, seed=29, as_of=AS_OF)
    engine = DuckDBEngine(duckdb.connect())
    engine.load_master([data / "master.csv"], lambda problem: None)
    engine.fit_model()
    return engine, data / "requests.csv"


@pytest.mark.parametrize("processes", [1, 2])
def test_every_request_is_explained_from_the_rows_as_it_was_decided(
    engine: tuple[DuckDBEngine, Path], processes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one process the recorder is handed pair objects; with two (a large CLI batch), the scorer's Arrow."""
    scoring_engine, requests = engine
    policy = Policy.default()
    items = list(read_requests(requests))
    recorder = ScoringRecorder()
    if processes == 2:
        if not can_fork():
            pytest.skip("no fork here")
        monkeypatch.setattr(pipeline, "MIN_ITEMS_TO_SPLIT", 10)  # this small batch takes the large one's path
    else:
        # As for a batch of millions: the pair objects made into columns every so many.
        monkeypatch.setattr(batch_explanations, "_PAIRS_HELD_AS_OBJECTS", 50)
    decisions = decide_requests(scoring_engine, policy, AS_OF, items, processes=processes, observe=recorder)
    assert len(recorder._scored_tables) >= (1 if processes == 2 else 3)
    scored = recorder.scored
    con = scoring_engine.connection
    batch_id = f"b-{processes}"
    save_scoring(con, batch_id, recorder, scoring_engine.current_model()[0])
    assert recorder.scored == 0  # emptied once saved
    # The same requests decided with the lookup's recorder, explained as they are decided.
    again, expected = decide_and_explain(scoring_engine, policy, AS_OF, items)
    assert again == decisions
    rules: Counter[str] = Counter()
    found = 0
    for position, decision in enumerate(decisions):
        recorded = recorded_decision(con, batch_id, position)
        if recorded is None:
            assert decision.outcome is Outcome.REJECTED  # never scored
            continue
        found += 1
        explained = explanation_of(decision, recorded.observed, policy, recorded.prior_weight, recorded.level_weights)
        assert explained == expected[position], decision.request_id
        rules[explained["deciding_rule"]["rule"]] += 1
    assert found == scored and found > 100
    assert {"confident_match", "no_candidate"} <= set(rules), rules
    assert "unexplained" not in rules

    forget_batches(con, [batch_id])
    assert all(recorded_decision(con, batch_id, position) is None for position in range(len(decisions)))


def test_positions_count_the_requests_a_chunk_did_not_decide(engine: tuple[DuckDBEngine, Path]) -> None:
    scoring_engine, requests = engine
    policy = Policy.default()
    items = list(read_requests(requests))[:40]
    recorder = ScoringRecorder(positions=[100 + 2 * index for index in range(len(items))])
    decide_requests(scoring_engine, policy, AS_OF, items, observe=recorder)
    save_scoring(scoring_engine.connection, "b-3", recorder, scoring_engine.current_model()[0])
    kept = [position for position in range(100, 180) if recorded_decision(scoring_engine.connection, "b-3", position)]
    assert kept and all(position % 2 == 0 for position in kept)
