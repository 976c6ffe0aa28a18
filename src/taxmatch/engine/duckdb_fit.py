"""Model fitting on DuckDB: the only engine module that imports Splink."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import duckdb

from taxmatch.engine.duckdb_tables import MASTER_STANDARDIZED, DuckDBTables
from taxmatch.engine.interface import MasterNotLoadedError
from taxmatch.match.levels import ADDRESS_COLUMNS, COMPARISONS_BY_NAME, CROSSED_NAMES, HOUSE_NUMBER_NEIGHBOURS
from taxmatch.match.model import (
    MODEL_INPUT_COLUMNS,
    model_version,
    settings_creator,
)
from taxmatch.match.scorer import compile_scorer

U_SAMPLE_PAIRS = 2_000_000
U_SAMPLE_SEED = 20261125


class ModelFit(DuckDBTables):
    def fit_model(self) -> str:
        """Estimate u from random pairs of the master; store the model and commit it with the master
        that `load_master` swapped in (its transaction); return the model version."""
        if not self._has_table(MASTER_STANDARDIZED):
            raise RuntimeError("a model is fitted right after `load_master`, on the same connection")
        try:
            version = self._fit_model()
            self.connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.connection.execute("ROLLBACK")
            self._current_model = None
            raise
        self._scorer()  # compiled now and kept, so that the first batch need not import Splink
        return version

    def _fit_model(self) -> str:
        from splink import DuckDBAPI, Linker

        if not self.master_is_loaded():
            raise MasterNotLoadedError()
        counts = self.connection.execute(f"SELECT count(*), count(DISTINCT tin) FROM {MASTER_STANDARDIZED}").fetchone()
        assert counts is not None
        returns, taxpayers = int(counts[0]), int(counts[1])
        self._model_input_view(MASTER_STANDARDIZED, "model_input_master")
        database_api = DuckDBAPI(connection=self.connection)
        master = database_api.register("model_input_master")
        linker = Linker(master, settings_creator("dedupe_only", taxpayers), log_level=logging.WARNING)
        linker.training.estimate_u_using_random_sampling(
            max_pairs=min(U_SAMPLE_PAIRS, max(10_000, returns * (returns - 1) / 2)), seed=U_SAMPLE_SEED
        )
        model = linker.misc.save_model_to_json()
        self._count_address_u(model, returns)
        self._complete_name_u(model)
        self._create_term_frequency_tables(model)
        model["link_type"] = "link_only"
        model["linker_uid"] = "taxmatch"
        model.pop("sql_dialect", None)
        version = model_version(model)
        self.connection.execute(
            # fitted_at too: a master loaded again refits the very model it had (same version), which
            # must become the newest again, or a master swapped back would serve under the other's model.
            "INSERT OR REPLACE INTO model_store (version, model_json, fitted_at, taxpayers, returns) "
            "VALUES (?, ?, current_timestamp, ?, ?)",
            [version, json.dumps(model, sort_keys=True), taxpayers, returns],
        )
        self._current_model = None
        self._drop_splink_tables()
        self.connection.execute(f"DROP TABLE {MASTER_STANDARDIZED}")
        # The load's memory cap (`load_master`) ends with the fit that follows the load.
        self.connection.execute("RESET memory_limit")
        return version

    def _count_address_u(self, model: dict[str, Any], returns: int) -> None:
        """Replace sampled u of the rare address levels by exact counts over the whole master.

        Two different taxpayers agree on house number and street only when they share a
        building, which a random sample of two million pairs sees a few times at most (or
        never), so its u for these levels is noise. Every such pair shares `key_address`, so
        counting them exactly is one self-join over small groups. Pairs of one TIN (the same
        person in two years) are matches and are left out.
        """
        comparison = next(c for c in model["comparisons"] if c["output_column_name"] == "address")
        settings = compile_scorer(model)
        labels = settings.level_labels["address"]
        case_statement = settings.case_statements["address"]
        sides = ", ".join(f"a.{column} AS {column}_l, b.{column} AS {column}_r" for column in ADDRESS_COLUMNS)
        # The returns of one taxpayer at one address are alike (a return a year): each distinct
        # (taxpayer, address columns) is compared once and its pairs counted by weight, which
        # gives the counts of the return pairs with a fraction of the comparisons.
        address_columns = ", ".join(ADDRESS_COLUMNS)
        counted = dict(
            self.connection.execute(
                f"""WITH grouped AS (
                    SELECT key_address, tin, {address_columns}, count(*) AS returns
                    FROM {MASTER_STANDARDIZED} WHERE key_address IS NOT NULL GROUP BY ALL)
                SELECT gamma_address, sum(returns_l * returns_r) FROM (
                    SELECT {case_statement}, returns_l, returns_r FROM (
                        SELECT {sides}, a.returns AS returns_l, b.returns AS returns_r
                        FROM grouped a JOIN grouped b ON a.key_address = b.key_address AND a.tin < b.tin))
                GROUP BY gamma_address"""
            ).fetchall()
        )
        all_pairs = max(returns * (returns - 1) / 2, 1.0)
        # Every pair at one ZIP and house number was counted: these levels, of which house_place holds
        # nothing else. (`place_typo`, the same
        # house of the same street in another place, is left to the sample: counting it would join
        # every house number of every street to itself, 5 s at 200k people.)
        counted_levels = {"exact", "line", "street_typo", "other_unit", "house_place"}
        levels = {str(level.get("label_for_charts")): level for level in comparison["comparison_levels"]}
        for gamma, label in labels.items():
            if label in counted_levels:
                # One pseudo-count keeps a level nobody shares finite.
                levels[label]["u_probability"] = max(int(counted.get(gamma, 0)), 1) / all_pairs
        # A house number one keying error away on the same street: as if each of its keyed-in
        # neighbours were another household of the same street (an upper bound: most such
        # numbers are no house). Counting them exactly would join every street to itself.
        same_street = sum(levels[label]["u_probability"] for label in ("exact", "line", "street_typo"))
        levels["house_typo"]["u_probability"] = min(0.5, same_street * HOUSE_NUMBER_NEIGHBOURS)
        # Sampled levels that the sample never saw: one pseudo-count over all pairs keeps them finite.
        for level in levels.values():
            if not level.get("is_null_level") and not level.get("u_probability"):
                level["u_probability"] = 1 / all_pairs

    def _complete_name_u(self, model: dict[str, Any]) -> None:
        """u of the name levels that a random sample of pairs cannot estimate (`levels.Level`).

        Swapped names: the chance that one taxpayer's given name is another's surname, from the
        master's name frequencies (each comparison counts its half of the swap). Levels the sample
        never saw take the u of the level named in `u_when_unseen`.
        """
        crossed = self.connection.execute(
            f"""WITH returns AS (SELECT count(*) AS n FROM {MASTER_STANDARDIZED}),
                given AS (SELECT first_name AS name, count(*) AS times FROM {MASTER_STANDARDIZED} GROUP BY 1),
                family AS (SELECT last_name AS name, count(*) AS times FROM {MASTER_STANDARDIZED} GROUP BY 1)
            SELECT sum(given.times * family.times) / any_value(returns.n * returns.n)
            FROM given JOIN family USING (name), returns"""
        ).fetchone()
        chance_crossed = float(crossed[0]) if crossed and crossed[0] else 0.0
        for comparison in model["comparisons"]:
            declared = COMPARISONS_BY_NAME[str(comparison["output_column_name"])]
            stored = {str(level.get("label_for_charts")): level for level in comparison["comparison_levels"]}
            for level in declared.levels:
                if level.counted_u == CROSSED_NAMES and chance_crossed > 0:
                    stored[level.label]["u_probability"] = chance_crossed
                elif level.u_when_unseen is not None and not stored[level.label].get("u_probability"):
                    stored[level.label]["u_probability"] = stored[level.u_when_unseen].get("u_probability")

    def _create_term_frequency_tables(self, model: dict[str, Any]) -> None:
        """Term frequencies of the master (the population a request is matched against), one table a
        column, and stored in each profile too, so that scoring a batch reads them with the profile
        instead of joining them to every pair."""
        for column in compile_scorer(model).term_frequency_columns:
            self.connection.execute(
                f"""CREATE OR REPLACE TABLE tf_{column} AS
                SELECT {column}, count(*) / sum(count(*)) OVER () AS tf_{column}
                FROM {MASTER_STANDARDIZED} WHERE {column} IS NOT NULL GROUP BY {column}"""
            )
            self.connection.execute(f"ALTER TABLE master_profiles ADD COLUMN IF NOT EXISTS tf_{column} DOUBLE")
            self.connection.execute(
                f"""UPDATE master_profiles SET tf_{column} = frequencies.tf_{column}
                FROM tf_{column} frequencies WHERE frequencies.{column} = master_profiles.{column}"""
            )
        self._profile_columns = None

    def _model_input_view(self, source: str, name: str) -> None:
        """The Splink input shape of a standardized table: `unique_id` plus the model input columns."""
        unique_id = "return_id" if source in (MASTER_STANDARDIZED, "master_profiles") else "unique_id"
        columns = ", ".join(column for column in MODEL_INPUT_COLUMNS if column != "unique_id")
        self.connection.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {unique_id} AS unique_id, {columns} FROM {source}"
        )

    def _drop_splink_tables(self) -> None:
        leftovers = self.connection.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE '__splink__%'"
        ).fetchall()
        for name, kind in leftovers:
            keyword = "VIEW" if kind == "VIEW" else "TABLE"
            self.connection.execute(f'DROP {keyword} IF EXISTS "{name}"')
