"""The test-only oracle: Splink's own predict() over a loaded DuckDB engine's master and model."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.match.request_inputs import request_input_table
from taxmatch.match.scorer import compile_scorer
from taxmatch.records import RequestRecord


def splink_reference_scores(
    engine: DuckDBEngine, requests: Sequence[tuple[int, RequestRecord]]
) -> dict[tuple[int, int], float]:
    """Match probabilities from Splink's own predict() for the same requests: the oracle the tests hold
    the compiled scorer to. Keys are (request input row, return id)."""
    from splink import DuckDBAPI, Linker

    _, model = engine.current_model()
    engine._stage_requests(request_input_table(requests))
    engine._model_input_view("request_inputs", "model_input_requests")
    engine._model_input_view("master_profiles", "model_input_master")
    database_api = DuckDBAPI(connection=engine.connection)
    left = database_api.register("model_input_requests")
    right = database_api.register("model_input_master")
    linker = Linker([left, right], copy.deepcopy(model), log_level=logging.WARNING)
    for column in compile_scorer(model).term_frequency_columns:
        lookup = database_api.register(f"tf_{column}")
        linker.table_management.register_term_frequency_lookup(lookup, column)
    predictions = linker.inference.predict(warning_mode="never")
    rows = engine.connection.execute(
        f"SELECT unique_id_l, unique_id_r, match_probability FROM {predictions.physical_name}"
    ).fetchall()
    engine._drop_splink_tables()
    return {(int(left_id), int(right_id)): float(probability) for left_id, right_id, probability in rows}
