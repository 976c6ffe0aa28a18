"""The in-memory candidate index: the same candidates, pairs and decisions as the statement reads and the batch."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from taxmatch import pipeline
from taxmatch.engine.duckdb_candidate_index import CandidateIndex, _KeyColumn
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.interface import prepare_for_lookups
from taxmatch.io.requests import Item, read_requests
from taxmatch.match.blocking import MASTER_KEY_COLUMNS
from taxmatch.records import Outcome, ReasonCode, RequestRecord
from taxmatch.settings import Policy
from taxmatch.synth import generate

AS_OF = datetime.date(2026, 11, 25)


@dataclasses.dataclass(frozen=True)
class Loaded:
    statements: DuckDBEngine  # candidates read by DuckDB statements
    indexed: DuckDBEngine  # the same database, candidates from the in-memory index
    items: list[Item]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    data = tmp_path_factory.mktemp("index")
    generate(data, people=900, requests=400, seed=17, as_of=AS_OF)
    connection = duckdb.connect()
    statements = DuckDBEngine(connection)
    statements.load_master([data / "master.csv"], lambda problem: None)
    statements.fit_model()
    indexed = DuckDBEngine(connection.cursor())
    prepare_for_lookups([indexed])
    assert indexed._candidate_index is not None
    return Loaded(statements, indexed, list(read_requests(data / "requests.csv")))


def _variants(request: RequestRecord) -> list[RequestRecord]:
    """The request and a few ways it is keyed wrong: each reaches other blocking keys."""
    return [
        request,
        dataclasses.replace(request, first_name=request.last_name, last_name=request.first_name),
        dataclasses.replace(request, zip=""),
        dataclasses.replace(request, tin="", street=""),
        dataclasses.replace(request, last_name="Zzyzx", state=""),
    ]


def test_the_index_finds_what_the_statements_find_for_every_request_and_variant(
    loaded: Loaded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The indexed engine must not fall back to the statements: it is the index that is compared.
    monkeypatch.setattr(loaded.indexed, "_read_candidates", _refuse)
    requests = [(index, item) for index, item in enumerate(loaded.items) if isinstance(item, RequestRecord)]
    compared = paired = 0
    for index, request in requests:
        for variant in _variants(request):
            expected = loaded.statements.score([(index, variant)])
            assert loaded.indexed.score([(index, variant)]) == expected, (index, variant)
            compared += 1
            paired += bool(expected)
    assert compared >= 1500
    assert paired >= compared // 2


def test_lookups_from_the_index_decide_as_the_batch_does(loaded: Loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outcome, reason codes, probability and disclosure of every request, one lookup at a time, equal
    the batch's (more than the point-read limit: the batch join), and so a wrong index cannot pass."""
    monkeypatch.setattr(loaded.indexed, "_read_candidates", _refuse)
    policy = Policy.default()
    batch = pipeline.decide_requests(loaded.statements, policy, AS_OF, loaded.items)
    compared = 0
    for item, expected in zip(loaded.items, batch, strict=True):
        if ReasonCode.DUPLICATE_REQUEST_ID in expected.reason_codes:
            continue  # a repeated id is a batch's finding; a lookup is one request
        assert pipeline.decide_requests(loaded.indexed, policy, AS_OF, [item]) == [expected]
        compared += 1
    assert compared >= 350
    assert sum(decision.outcome is Outcome.DISCLOSED for decision in batch) >= 100
    assert {decision.outcome for decision in batch} == set(Outcome)


def test_several_requests_in_one_call_read_the_index_alike(loaded: Loaded) -> None:
    requests = [(index, item) for index, item in enumerate(loaded.items) if isinstance(item, RequestRecord)][:60]
    assert loaded.indexed.score(requests) == loaded.statements.score(requests)


def test_a_hash_shared_by_two_values_finds_only_the_equal_value() -> None:
    values = pa.array(["SMITH|JOHN|TX", "DOE|JANE|OH", None, "SMITH|JOHN|TX"], type=pa.large_string())
    shared = hash("SMITH|JOHN|TX")
    # As if "DOE|JANE|OH" hashed to the same 64 bits: the stored value decides.
    column = _KeyColumn(np.array([shared, shared, shared], dtype=np.int64), np.array([0, 1, 3], dtype=np.int32), values)
    assert column.positions_of("SMITH|JOHN|TX") == [0, 3]
    assert column.positions_of("DOE|JANE|OH") == []
    assert column.positions_of("NOBODY") == []


def test_the_index_holds_every_present_key_value_and_no_absent_one(loaded: Loaded) -> None:
    index = loaded.indexed._candidate_index
    assert index is not None
    rows = loaded.statements.connection.execute(
        f"SELECT return_id, point_row, {', '.join(MASTER_KEY_COLUMNS)} FROM master_profiles"
    ).fetchall()
    assert index.profiles == len(rows)
    for return_id, point_row, *keys in rows[::7]:
        for column, value in zip(MASTER_KEY_COLUMNS, keys, strict=True):
            if value is None:
                continue
            found = {index.return_id(position) for position in index.positions_of(column, value)}
            assert return_id in found
            assert all(index.key_value(column, position) == value for position in index.positions_of(column, value))
        (position,) = [p for p in index.positions_of("key_tin", keys[MASTER_KEY_COLUMNS.index("key_tin")])
                       if index.return_id(p) == return_id]  # fmt: skip
        assert index.point_row(position) == point_row
    assert index.nbytes > 0


def test_a_model_changed_under_the_index_sends_lookups_back_to_the_statements(loaded: Loaded) -> None:
    engine = DuckDBEngine(loaded.statements.connection.cursor())
    prepare_for_lookups([engine])
    index = engine._candidate_index
    assert index is not None
    engine._candidate_index = CandidateIndex(
        "another-model", index._return_ids, index._point_rows, index._keys
    )  # built under a model that is no longer current
    assert engine._current_candidate_index() is None
    request = next((i, item) for i, item in enumerate(loaded.items) if isinstance(item, RequestRecord))
    assert engine.score([request]) == loaded.statements.score([request])


def test_lookup_engines_share_one_index_and_skip_a_workspace_without_a_master(tmp_path: Path, loaded: Loaded) -> None:
    engines = [DuckDBEngine(loaded.statements.connection.cursor()) for _ in range(3)]
    prepare_for_lookups(engines)
    first = engines[0]._candidate_index
    assert first is not None
    assert all(engine._candidate_index is first for engine in engines)
    empty = DuckDBEngine(duckdb.connect(str(tmp_path / "empty.duckdb")))
    prepare_for_lookups([empty])
    assert empty._candidate_index is None


def _refuse(*arguments: object) -> None:
    raise AssertionError("the indexed engine read its candidates with a statement")


def test_the_return_index_reads_every_tin_as_the_statements_do(loaded: Loaded) -> None:
    index = loaded.indexed._return_index
    assert index is not None and index.nbytes > 0
    tins = [
        str(row[0])
        for row in loaded.statements.connection.execute("SELECT DISTINCT key_tin FROM master_returns").fetchall()
    ]
    assert len(tins) >= 800
    for start in range(0, len(tins), 50):
        chunk = [*tins[start : start + 50], "000000000", "not a tin"]
        assert loaded.indexed.returns_of(chunk) == loaded.statements.returns_of(chunk)
    assert index.rows_of("nobody") == []
