"""The DuckDB engine's tables and current model, shared by its jobs (ingest, fit, point reads, batch).

This module owns every table of the workspace database except the ledger's. SQL dialect
(standardization macros) comes from `standardize.sql`, model shape from `match.model`;
the engine only runs them.

Tables:
- master_returns   one row per usable master row: the fields as filed (what is disclosed), TIN key
- master_profiles  one row per distinct (taxpayer, model input columns): what is blocked and scored;
                   point_row packs its model input columns for the on-demand reads
- model_store      fitted model JSON by version (the newest row is current)
- compiled_scorers the scoring SQL compiled from a model, by model version, Splink version and compiler
- name_lookup      per distinct folded name: the names it may stand for, its transliteration skeleton
"""

from __future__ import annotations

import json
import logging
from typing import Any

import duckdb

from taxmatch.engine.interface import MasterNotLoadedError, ModelOutdatedError
from taxmatch.match.model import (
    COMPARISON_SHAPE,
    MODEL_INPUT_COLUMNS,
    comparison_shape,
)
from taxmatch.match.python_scorer import PythonScorer
from taxmatch.match.scorer import CompiledScorer, compile_scorer, compiled_scorer_key
from taxmatch.standardize.sql import standardization_macros, street_token_table_sql

logger = logging.getLogger(__name__)


# Requests up to this many are looked up by index point reads; larger ones by joins over the master.
POINT_LOOKUP_MAX_REQUEST_ROWS = 64
# Every master row standardized (model input columns and keys): a TEMP table that lives from the
# load to the model fit that follows it, never written to the workspace database.
MASTER_STANDARDIZED = "master_standardized"
# The given names someone has (the master's and the nickname tables'): see `_create_attested_given_names`.
ATTESTED_GIVEN_NAMES = "attested_given_names"
# DuckDB's memory during a master load and the fit after it: 1M people (3M returns) stay under a
# 4 GB peak of the whole process with it, at the cost of some spilling.
LOAD_MEMORY_LIMIT = "2.5GB"


class DuckDBTables:
    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        self._compiled: dict[str, CompiledScorer] = {}
        self._python_scorers: dict[str, PythonScorer] = {}
        self._current_model: tuple[str, dict[str, Any]] | None = None
        self._has_point_rows: bool | None = None
        # Whether the master has its attested given names (a master loaded before them has not).
        # The master's attested given names (`attest_given_names`), read once; None: not read yet.
        self._attested_names: frozenset[str] | None = None
        self._profile_columns: frozenset[str] | None = None
        for macro in standardization_macros():
            self.connection.execute(macro)
        self.connection.execute(street_token_table_sql())
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS model_store (version VARCHAR PRIMARY KEY, model_json VARCHAR, "
            "fitted_at TIMESTAMP DEFAULT current_timestamp, taxpayers BIGINT, returns BIGINT)"
        )
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS compiled_scorers (cache_key VARCHAR PRIMARY KEY, scorer_json VARCHAR)"
        )

    def master_is_loaded(self) -> bool:
        found = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'master_returns'"
        ).fetchone()
        return bool(found and found[0])

    def _has_table(self, name: str) -> bool:
        found = self.connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()
        return bool(found and found[0])

    def current_model(self) -> tuple[str, dict[str, Any]]:
        """The fitted model, read once per engine: only this engine's `fit_model` can replace it,
        because DuckDB lets one process at a time write the workspace database."""
        if self._current_model is None:
            row = self.connection.execute(
                "SELECT version, model_json FROM model_store ORDER BY fitted_at DESC, version LIMIT 1"
            ).fetchone()
            if row is None:
                raise MasterNotLoadedError()
            model = json.loads(row[1])
            if comparison_shape(model) != COMPARISON_SHAPE or not self._profiles_have_model_columns():
                raise ModelOutdatedError(str(row[0]))
            self._current_model = (str(row[0]), model)
        return self._current_model

    def _profiles_have_model_columns(self) -> bool:
        """Whether the master's profiles carry every model input column this version scores on."""
        found = {
            str(row[0])
            for row in self.connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'master_profiles'"
            ).fetchall()
        }
        return not found or all(column in found for column in MODEL_INPUT_COLUMNS if column != "unique_id")

    def _profiles_have_term_frequencies(self, scorer: CompiledScorer) -> bool:
        """Whether `fit_model` stored the term frequencies in the profiles (a workspace loaded by
        an earlier version has them only in the tf_ tables)."""
        if self._profile_columns is None:
            self._profile_columns = frozenset(
                str(row[0])
                for row in self.connection.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'master_profiles' AND table_catalog = current_database()"
                ).fetchall()
            )
        return all(f"tf_{column}" in self._profile_columns for column in scorer.term_frequency_columns)

    def _scorer(self) -> tuple[str, CompiledScorer]:
        """The current model's compiled scorer: from this engine, else from the workspace (where
        the first use, or the fit, leaves it), else compiled now."""
        version, model = self.current_model()
        cached = self._compiled.get(version)
        if cached is None:
            key = compiled_scorer_key(version)
            stored = self.connection.execute(
                "SELECT scorer_json FROM compiled_scorers WHERE cache_key = ?", [key]
            ).fetchone()
            if stored is not None:
                cached = CompiledScorer.from_json(str(stored[0]))
            else:
                cached = compile_scorer(model)
                self.connection.execute("INSERT OR IGNORE INTO compiled_scorers VALUES (?, ?)", [key, cached.to_json()])
            self._compiled[version] = cached
        return version, cached
