"""What the Spark engine runs on its executors, run here without Spark: the same pairs, to the
last bit, as the DuckDB batch query. (The JVM is needed only to move the rows; test_engines.py
runs the whole thing on Spark.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.interface import request_input_table
from taxmatch.engine.spark_scoring import (
    GAMMA_COMPARISONS,
    PROFILE_COLUMNS,
    SIDE_COLUMNS,
    pair_scorer,
    standardize_requests,
)
from taxmatch.match.blocking import BLOCK_KEY_JOINS, MASTER_KEY_COLUMNS
from taxmatch.match.candidates import taxpayer_facts_of
from taxmatch.match.scored_pairs import ScoredPairs
from taxmatch.records import RequestRecord

if TYPE_CHECKING:
    from conftest import FittedEngine


@pytest.fixture(scope="module")
def engine_and_requests(
    fitted_engine: FittedEngine, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]:
    return fitted_engine(tmp_path_factory.mktemp("spark-scoring"), people=300, requests=150, seed=23)


def _executor_plan(engine: DuckDBEngine, requests: list[tuple[int, RequestRecord]]) -> ScoredPairs:
    """SparkEngine.score_batch's plan with Python in place of Spark's joins and shuffles."""
    inputs = request_input_table(requests)
    standardized = [row for batch in standardize_requests(inputs.to_batches()) for row in batch.to_pylist()]
    attested = {str(name) for (name,) in engine.connection.execute("SELECT name FROM attested_given_names").fetchall()}
    for row in standardized:
        row["first_attested"] = row["first_name"] in attested
    profiles = (
        engine.connection.execute(f"SELECT {', '.join(PROFILE_COLUMNS)} FROM master_profiles")
        .to_arrow_table()
        .to_pylist()
    )
    by_key: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for profile in profiles:
        for column in MASTER_KEY_COLUMNS:
            if profile[column] is not None:
                by_key[(column, profile[column])].append(profile)
    pairs: dict[int, dict[tuple[int, int], dict[str, Any]]] = defaultdict(dict)
    for row in standardized:
        for request_column, master_column in BLOCK_KEY_JOINS:
            for profile in by_key.get((master_column, row[request_column]), []) if row[request_column] else []:
                pairs[row["request_index"]][(row["unique_id"], profile["return_id"])] = {
                    "request_index": row["request_index"],
                    "unique_id": row["unique_id"],
                    "return_id": profile["return_id"],
                    **{f"l_{column}": row[column] for column in SIDE_COLUMNS},
                    **{f"r_{column}": profile[column] for column in SIDE_COLUMNS},
                }
    _, compiled = engine._scorer()
    gammas = {
        name: {label: gamma for gamma, label in compiled.level_labels[name].items()} for name in GAMMA_COMPARISONS
    }
    labels = tuple(
        tuple(compiled.level_labels[name].get(gamma, "missing") for gamma in range(-1, 16))
        for name in GAMMA_COMPARISONS
    )
    score = pair_scorer(engine._python_scorer(), gammas)
    tables = [score(pa.Table.from_pylist(list(group.values()))) for group in pairs.values()]
    table = pa.concat_tables(tables).sort_by(
        [("request_index", "ascending"), ("return_id", "ascending"), ("match_weight", "descending")]
    )
    return ScoredPairs(table, labels)


def test_executor_functions_give_the_batch_querys_pairs(
    engine_and_requests: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    engine, requests = engine_and_requests
    expected = engine.score_batch(request_input_table(requests)).pairs()
    assert len(expected) > 100
    assert _executor_plan(engine, requests).pairs() == expected


def test_taxpayer_facts_fold_as_the_duckdb_engine_folds_them(
    engine_and_requests: tuple[DuckDBEngine, list[tuple[int, RequestRecord]]],
) -> None:
    engine, _ = engine_and_requests
    tins = [str(row[0]) for row in engine.connection.execute("SELECT DISTINCT tin FROM master_profiles").fetchall()]
    rows = engine.connection.execute("SELECT tin, key_address, dob, middle_initial FROM master_profiles").fetchall()
    assert taxpayer_facts_of(rows) == engine.taxpayer_facts(tins)


def test_spark_without_java_is_a_clear_error(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "JAVA_HOME"}
    environment["PATH"] = str(tmp_path)  # no java on it
    done = subprocess.run(
        [str(Path(sys.executable).with_name("taxmatch")), "--engine", "spark", "--home", str(tmp_path / "home"),
         "master", "load", str(tmp_path / "master.csv")],
        capture_output=True, text=True, timeout=120, check=False, env=environment,
    )  # fmt: skip
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-2000:]
    assert done.returncode == 2
    assert "needs Java 17" in done.stderr or "needs pyspark" in done.stderr
