"""The engine's on-demand reads: packed profile rows, returns read by TIN."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import duckdb
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.interface import ModelOutdatedError
from taxmatch.match.blocking import MASTER_KEY_COLUMNS
from taxmatch.match.levels import Role, labels_with
from taxmatch.match.model import MODEL_INPUT_COLUMNS
from taxmatch.records import RequestRecord

if TYPE_CHECKING:
    from conftest import FittedEngine


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, fitted_engine: FittedEngine
) -> tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]:
    return fitted_engine(tmp_path_factory.mktemp("engine"), people=600, requests=200, seed=5)


def test_point_row_holds_the_profile_columns(loaded: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]) -> None:
    engine, _ = loaded
    columns = [column for column in MODEL_INPUT_COLUMNS if column != "unique_id"]
    cursor = engine.connection.execute(f"SELECT point_row, {', '.join(columns)} FROM master_profiles")
    rows = cursor.fetchall()
    assert len(rows) > 600
    lists = 0
    for packed, *values in rows:
        assert json.loads(packed) == values
        lists += isinstance(values[columns.index("first_forms")], list)
    assert lists == len(rows), "the list columns come back as lists from both"


def test_lookups_of_a_master_without_point_rows_read_the_columns_alike(
    loaded: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    engine, requests = loaded
    sample = requests[:60]
    packed = [pair for request in sample for pair in engine.score([request])]
    assert len(packed) > 60
    # A master loaded before point_row existed: the same profiles and indexes without it.
    con = duckdb.connect()
    legacy_engine = DuckDBEngine(con)
    # (With the attested given names: a master without them is another case, their levels then
    # read every name as no one's.)
    for table in ("master_returns", "master_profiles", "model_store", "name_lookup", "attested_given_names"):
        relation = engine.connection.execute(f"SELECT * FROM {table}").to_arrow_table()
        if table == "master_profiles":
            relation = relation.drop_columns(["point_row"])
        con.register("copied", relation)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM copied")
        con.unregister("copied")
    for table in engine.connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'tf_%'"
    ).fetchall():
        con.register("copied", engine.connection.execute(f"SELECT * FROM {table[0]}").to_arrow_table())
        con.execute(f"CREATE TABLE {table[0]} AS SELECT * FROM copied")
        con.unregister("copied")
    for column in MASTER_KEY_COLUMNS:
        con.execute(f"CREATE INDEX master_profiles_{column} ON master_profiles ({column})")
    con.execute("CREATE INDEX master_returns_key_tin ON master_returns (key_tin)")
    assert [pair for request in sample for pair in legacy_engine.score([request])] == packed


def test_returns_of_orders_by_year_then_primary(loaded: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]) -> None:
    engine, _ = loaded
    tins = [row[0] for row in engine.connection.execute(
        "SELECT tin FROM master_returns GROUP BY tin ORDER BY count(*) DESC, tin LIMIT 20").fetchall()]  # fmt: skip
    expected: dict[str, list[int]] = {}
    for tin, return_id in engine.connection.execute(
        "SELECT tin, return_id FROM master_returns WHERE tin IN (SELECT unnest($1)) "
        "ORDER BY tin, tax_year DESC, role, return_id",
        [tins],
    ).fetchall():
        expected.setdefault(tin, []).append(return_id)
    got = engine.returns_of(tins)
    assert {tin: [row.return_id for row in rows] for tin, rows in got.items()} == expected
    assert any(len(ids) > 1 for ids in expected.values())


def test_a_model_fitted_with_other_comparisons_is_refused_with_the_fix(
    loaded: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    engine, _ = loaded
    version, model = engine.current_model()
    older = json.loads(json.dumps(model))
    # As a model fitted before the middle-initial comparison existed.
    older["comparisons"] = [c for c in older["comparisons"] if c["output_column_name"] != "middle_initial"]
    other = DuckDBEngine(engine.connection)
    engine.connection.execute(
        "INSERT INTO model_store (version, model_json, fitted_at) VALUES ('model-older', ?, now() + INTERVAL 1 DAY)",
        [json.dumps(older)],
    )
    try:
        with pytest.raises(ModelOutdatedError, match="master load"):
            other.current_model()
    finally:
        engine.connection.execute("DELETE FROM model_store WHERE version = 'model-older'")
    assert DuckDBEngine(engine.connection).current_model()[0] == version


def test_a_date_of_birth_in_any_form_validation_accepts_compares_equal(
    loaded: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    """`1980-1-2` and `1/2/1980` are the return's `1980-01-02`: never a conflict that vetoes the person."""
    import dataclasses

    from taxmatch.validate.dates import parse_date

    engine, requests = loaded
    dated = [(index, request) for index, request in requests if parse_date(request.dob) is not None][:40]
    assert len(dated) >= 20
    for index, request in dated:
        day = parse_date(request.dob)
        assert day is not None
        iso = engine.score([(index, request)])
        for written in (f"{day.year}-{day.month}-{day.day}", f"{day.month}/{day.day}/{day.year}"):
            rewritten = dataclasses.replace(request, dob=written)
            assert engine.score([(index, rewritten)]) == iso, written  # the on-demand path
            # More requests than the point-read limit: the batch query scores them.
            batch = engine.score([(index, rewritten)] + [(10_000 + n, request) for n in range(64)])
            assert [pair for pair in batch if pair.request_index == index] == iso


def test_every_agreeing_name_level_has_a_chance_agreement(
    loaded: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    """A level with no u adds no weight: swapped names and typos would count for nothing."""
    engine, _ = loaded
    _, model = engine.current_model()
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        agreeing = labels_with(name, Role.NAME_AGREES) if name in ("first_name", "last_name") else frozenset()
        for level in comparison["comparison_levels"]:
            if level.get("label_for_charts") in agreeing:
                assert level.get("u_probability"), (name, level["label_for_charts"])
    swapped = [
        level["u_probability"]
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        if level.get("label_for_charts") == "swapped"
    ]
    assert len(swapped) == 2 and swapped[0] == swapped[1] and 0 < swapped[0] < 0.01
