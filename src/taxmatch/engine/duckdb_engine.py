"""DuckDB execution: the master store, model fitting and batch scoring.

This module owns every table of the workspace database except the ledger's. SQL dialect
(standardization macros) comes from `standardize.sql`, model shape from `match.model`;
this module only runs them.

Tables:
- master_returns   one row per usable master row: the fields as filed (what is disclosed), TIN key
- master_profiles  one row per distinct (taxpayer, model input columns): what is blocked and scored;
                   point_row packs its model input columns for the on-demand reads
- model_store      fitted model JSON by version (the newest row is current)
- compiled_scorers the scoring SQL compiled from a model, by model version, Splink version and compiler
- name_lookup      per distinct folded name: the names it may stand for, its transliteration skeleton
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from taxmatch.io.master import (
    MASTER_COLUMNS,
    MAX_REJECTED_SHARE,
    ROW_PROBLEM_SQL,
    MasterRowProblem,
    read_master,
    refuse_lossy_load,
)
from taxmatch.match.blocking import (
    BLOCK_KEY_JOINS,
    CAPPED_KEY_COLUMNS,
    MASTER_KEY_COLUMNS,
    MAX_RETURNS_PER_CAPPED_KEY,
    block_key_select_sql,
    block_keys,
)
from taxmatch.match.candidates import CandidatePair, ReturnRow, TaxpayerFacts, distinct_pairs
from taxmatch.match.decide import MIN_CANDIDATE_WEIGHT
from taxmatch.match.levels import ADDRESS_COLUMNS, COMPARISONS_BY_NAME, CROSSED_NAMES, HOUSE_NUMBER_NEIGHBOURS
from taxmatch.match.model import (
    COMPARISON_SHAPE,
    MODEL_INPUT_COLUMNS,
    comparison_shape,
    model_version,
    settings_creator,
)
from taxmatch.match.python_scorer import PythonScorer
from taxmatch.match.scorer import CompiledScorer, compile_scorer, compiled_scorer_key
from taxmatch.records import RequestRecord, field_filler
from taxmatch.standardize.names import given_name_forms, reference_given_names
from taxmatch.standardize.python_standardizer import name_skeleton, standardize_row
from taxmatch.standardize.sql import standardization_macros, street_name_sql, street_token_table_sql
from taxmatch.validate.dates import parse_date

logger = logging.getLogger(__name__)

U_SAMPLE_PAIRS = 2_000_000
U_SAMPLE_SEED = 20261125


class MasterNotLoadedError(RuntimeError):
    def __init__(
        self, message: str = "no master file is loaded in this workspace; run `taxmatch master load FILE` first"
    ) -> None:
        super().__init__(message)


class ModelOutdatedError(MasterNotLoadedError):
    """The workspace's model was fitted by a taxmatch whose comparisons differ from this one's.

    Its levels would not mean what this version's decision rule reads them as, so nothing is
    scored with it: the master must be loaded (and the model fitted) again.
    """

    def __init__(self, version: str) -> None:
        super().__init__(
            f"the model of this workspace ({version}) was fitted by another version of taxmatch, whose "
            "comparisons differ from this one's; run `taxmatch master load FILE` again to refit it"
        )


# Over the source row `s` joined to its per-value standardizations: `first`, `middle`, `last` and
# `city` (tm_fold_name of that field, in `folded`), `place` (street and unit parts) and `n` (the
# street name). Each regular expression runs once per distinct value, not once per row: a master
# of 3M returns has a few hundred thousand distinct streets and names.
_MODEL_INPUT_SELECT = """
    nullif(coalesce(first.folded, ''), '') AS first_name,
    nullif(substr(coalesce(middle.folded, ''), 1, 1), '') AS middle_initial,
    nullif(coalesce(last.folded, ''), '') AS last_name,
    list_filter(string_split(coalesce(last.folded, ''), ' '),
        t -> t <> '' AND t NOT IN ('DE', 'DEL', 'LA', 'LAS', 'LOS', 'Y', 'DA', 'DOS', 'VAN', 'VON')) AS surname_tokens,
    nullif(tm_suffix(s.suffix), '') AS suffix,
    nullif(s.dob, '') AS dob,
    tm_tin(s.tin) AS tin,
    place.house_number AS house_number,
    CASE WHEN place.is_po_box THEN 'PO BOX' ELSE nullif(n.street_name, '') END AS street_name,
    CASE WHEN place.is_po_box THEN 'POBOX' ELSE nullif(n.street_line, '') END AS street_line,
    CASE WHEN place.is_po_box THEN 'POBOX' ELSE nullif(n.street_bare, '') END AS street_bare,
    CASE WHEN place.is_po_box THEN NULL ELSE nullif(n.street_dirs, '') END AS street_dirs,
    CASE WHEN place.is_po_box THEN NULL ELSE nullif(n.street_type, '') END AS street_type,
    place.unit_standard AS unit,
    nullif(tm_zip5(s.zip), '') AS zip5,
    nullif(coalesce(city.folded, ''), '') AS city,
    nullif(tm_state(s.state), '') AS state
"""


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


class DuckDBEngine:
    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        self._compiled: dict[str, CompiledScorer] = {}
        self._python_scorers: dict[str, PythonScorer] = {}
        self._current_model: tuple[str, dict[str, Any]] | None = None
        self._has_point_rows: bool | None = None
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

    # ---- master -------------------------------------------------------------------------------

    def master_is_loaded(self) -> bool:
        found = self.connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'master_returns'"
        ).fetchone()
        return bool(found and found[0])

    def load_master(
        self,
        files: Sequence[Path],
        on_problem: Callable[[MasterRowProblem], None],
        on_bytes: Callable[[int], None] = lambda _: None,
        max_rejected_share: float = MAX_REJECTED_SHARE,
    ) -> tuple[int, int]:
        """Replace the master with the rows of `files`. Returns (rows loaded, taxpayers).

        The new master is built beside the old one and swapped in a transaction that this method
        leaves open: `fit_model`, which must follow on this connection, stores the new model in it
        and commits. Master and model are replaced together or not at all; a load that fails, or
        is killed before the fit commits, leaves the previous master and its model serving.
        """
        con = self.connection
        # A new master brings new term frequencies and, once fitted, a new model: forget the old.
        self._current_model = None
        self._compiled.clear()
        self._python_scorers.clear()
        self._has_point_rows = None
        self._attested_names = None
        self._profile_columns = None
        # DuckDB would otherwise keep every TEMP table below in memory (its default limit is 80% of
        # the machine); past this it spills them, encrypted, to the workspace's temp directory.
        con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
        # Staging, checking and the full standardized rows are TEMP tables: only what is read after
        # the load (the returns to disclose from, the profiles to score, their indexes) is written
        # to the encrypted database, which is most of what a load costs.
        staging_columns = ", ".join(f"{column} VARCHAR" for column in (*MASTER_COLUMNS, "source_file"))
        con.execute(f"CREATE OR REPLACE TEMP TABLE master_staging ({staging_columns}, source_line BIGINT)")
        reader_rejects = 0

        def on_reader_problem(problem: MasterRowProblem) -> None:
            nonlocal reader_rejects
            reader_rejects += 1
            on_problem(problem)

        batches = (batch for path in files for batch in read_master(path, on_reader_problem, on_bytes))
        for batch in _read_ahead(batches):
            con.register("master_batch", batch)
            con.execute("INSERT INTO master_staging SELECT * FROM master_batch")
            con.unregister("master_batch")
        trimmed = ", ".join(f"trim({column}) AS {column}" for column in MASTER_COLUMNS)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE master_checked AS SELECT *, {ROW_PROBLEM_SQL} AS problem
            FROM (SELECT {trimmed}, source_file, source_line FROM master_staging)"""
        )
        con.execute("DROP TABLE master_staging")
        for file_name, line, problem in con.execute(
            "SELECT source_file, source_line, problem FROM master_checked WHERE problem IS NOT NULL "
            "ORDER BY source_file, source_line"
        ).fetchall():
            on_problem(MasterRowProblem(str(file_name), int(line), str(problem)))
        counted = con.execute("SELECT count(*), count(problem) FROM master_checked").fetchone()
        assert counted is not None
        # Before anything is replaced: a load that keeps nothing, or drops too much, keeps the old master.
        refuse_lossy_load(int(counted[0]) + reader_rejects, int(counted[1]) + reader_rejects, max_rejected_share)
        con.execute("DELETE FROM master_checked WHERE problem IS NOT NULL")
        con.execute(f"DROP TABLE IF EXISTS {MASTER_STANDARDIZED}")
        self._create_standardized(
            MASTER_STANDARDIZED,
            "master_checked",
            """row_number() OVER (ORDER BY source_file, source_line) AS return_id,
               CAST(tax_year AS INTEGER) AS tax_year,
               lower(role) AS role,
               first_name AS first_name_raw, middle_name AS middle_name_raw,
               last_name AS last_name_raw, suffix AS suffix_raw,
               street AS street_raw, unit AS unit_raw, city AS city_raw, state AS state_raw,
               zip AS zip_raw, phone AS phone_raw""",
            temporary=True,
            order_by="return_id",
            master=True,
        )
        con.execute("DROP TABLE master_checked")
        for column in CAPPED_KEY_COLUMNS:
            con.execute(
                f"""UPDATE {MASTER_STANDARDIZED} SET {column} = NULL WHERE {column} IN (
                    SELECT {column} FROM {MASTER_STANDARDIZED} WHERE {column} IS NOT NULL
                    GROUP BY {column} HAVING count(*) > {MAX_RETURNS_PER_CAPPED_KEY})"""
            )
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DROP TABLE IF EXISTS master_profiles")
            con.execute("DROP TABLE IF EXISTS master_returns")
            # The returns as filed, to disclose from; read by TIN (key_tin is the TIN).
            con.execute(
                f"""CREATE TABLE master_returns AS
                SELECT return_id, tin, tax_year, role, first_name_raw, middle_name_raw, last_name_raw, suffix_raw,
                       street_raw, unit_raw, city_raw, state_raw, zip_raw, phone_raw, key_tin
                FROM {MASTER_STANDARDIZED} ORDER BY return_id"""
            )
            # What is scored: one row per distinct (taxpayer, standardized name, date of birth,
            # address). A taxpayer filing from one address under one name for years is one profile,
            # not one row per year: 1M people, 3.0M returns, 1.3M profiles. The lowest return id
            # names the profile.
            profile_columns = ", ".join(
                [column for column in MODEL_INPUT_COLUMNS if column != "unique_id"] + list(MASTER_KEY_COLUMNS)
            )
            # point_row: the model input columns of the profile packed in one JSON text, for the
            # on-demand path. DuckDB fetches an index scan's rows column by column, cell by cell
            # (~10 us a cell): one packed cell instead of sixteen makes a lookup's candidate read
            # ~1.3 ms instead of ~4 ms at 1M people. The batch join reads the columns themselves.
            con.execute(
                f"""CREATE TABLE master_profiles AS
                SELECT *, {_POINT_ROW_SQL} AS point_row FROM (
                    SELECT min(return_id) AS return_id, {profile_columns}
                    FROM {MASTER_STANDARDIZED} GROUP BY ALL)
                ORDER BY return_id"""
            )
            for column in MASTER_KEY_COLUMNS:
                con.execute(f"CREATE INDEX master_profiles_{column} ON master_profiles ({column})")
            self._create_attested_given_names()
            con.execute("CREATE INDEX master_returns_key_tin ON master_returns (key_tin)")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        # Not committed here: the new master must not serve under the old model (`fit_model` commits).
        counts = con.execute("SELECT count(*), count(DISTINCT tin) FROM master_returns").fetchone()
        assert counts is not None
        return int(counts[0]), int(counts[1])

    def _create_standardized(
        self, target: str, source: str, carried_columns: str, *, temporary: bool, order_by: str, master: bool = False
    ) -> None:
        """CREATE TABLE target: carried columns, model input columns and block keys, by the shared macros.

        `first_attested`: every given name of the master is one someone has; a request's is when
        the master or the nickname tables have it (`attested_given_names`, built by the load).
        """
        con = self.connection
        if master:
            attested_select, attested_join = "standardized.first_name IS NOT NULL", ""
        elif not self._has_table(ATTESTED_GIVEN_NAMES):
            attested_select, attested_join = "FALSE", ""
        else:
            attested_select = "attested.name IS NOT NULL"
            attested_join = f" LEFT JOIN {ATTESTED_GIVEN_NAMES} attested ON attested.name = standardized.first_name"
        # Distinct raw names first, then fold: one regular expression per name, not per row.
        self._refresh_name_lookup(
            f"SELECT tm_fold_name(raw) AS name FROM (SELECT first_name AS raw FROM {source} "
            f"UNION SELECT last_name FROM {source})"
        )
        con.execute(
            f"""CREATE {"TEMP " if temporary else ""}TABLE {target} AS
            WITH {_standardized_ctes(source, carried_columns)}
            SELECT standardized.*, given.forms AS first_forms,
                   nullif(given.skeleton, '') AS first_skeleton, nullif(family.skeleton, '') AS last_skeleton,
                   {attested_select} AS first_attested
            FROM standardized
            LEFT JOIN name_lookup given ON given.name = standardized.first_name
            LEFT JOIN name_lookup family ON family.name = standardized.last_name{attested_join}
            ORDER BY {order_by}"""
        )

    def _create_attested_given_names(self) -> None:
        """The given names someone has: the master's (whole and first word) and the nickname tables'."""
        con = self.connection
        reference = pa.table({"raw": sorted(reference_given_names())})
        con.register("reference_given_names", reference)
        con.execute(f"DROP TABLE IF EXISTS {ATTESTED_GIVEN_NAMES}")
        con.execute(
            f"""CREATE TABLE {ATTESTED_GIVEN_NAMES} AS SELECT DISTINCT name FROM (
                SELECT first_name AS name FROM {MASTER_STANDARDIZED}
                UNION ALL SELECT split_part(first_name, ' ', 1) FROM {MASTER_STANDARDIZED}
                UNION ALL SELECT tm_fold_name(raw) FROM reference_given_names)
            WHERE name IS NOT NULL AND name <> '' ORDER BY name"""
        )
        con.unregister("reference_given_names")
        con.execute(f"CREATE UNIQUE INDEX {ATTESTED_GIVEN_NAMES}_name ON {ATTESTED_GIVEN_NAMES} (name)")

    def attest_given_names(self, rows: Sequence[dict[str, Any]]) -> None:
        """Set `first_attested` on standardized request rows, as the batch join does."""
        if self._attested_names is None:
            # Read whole, once per engine: the distinct given names of the master and the nickname
            # tables (thousands; a few MB for a large real master), where a statement per lookup
            # cost ~0.8 ms of its CPU at 200k people. Only
            # a load on this engine replaces them (`load_master` forgets them); a master loaded
            # before the table existed has none, and no request name is attested, as in the join.
            self._attested_names = (
                frozenset(
                    str(row[0])
                    for row in self.connection.execute(f"SELECT name FROM {ATTESTED_GIVEN_NAMES}").fetchall()
                )
                if self._has_table(ATTESTED_GIVEN_NAMES)
                else frozenset()
            )
        attested = self._attested_names
        for row in rows:
            row["first_attested"] = row["first_name"] is not None and row["first_name"] in attested

    def _refresh_name_lookup(self, names_query: str) -> None:
        """Name knowledge that lives in Python (nicknames, transliteration skeletons), per distinct name.

        A master has millions of rows but thousands of distinct names: each is looked up once,
        by the same functions the on-demand path calls, and joined in SQL.
        """
        con = self.connection
        con.execute(
            "CREATE TABLE IF NOT EXISTS name_lookup (name VARCHAR PRIMARY KEY, forms VARCHAR[], skeleton VARCHAR)"
        )
        missing = con.execute(
            f"SELECT DISTINCT name FROM ({names_query}) WHERE name IS NOT NULL AND name <> '' "
            "AND name NOT IN (SELECT name FROM name_lookup) ORDER BY 1"
        ).fetchall()
        if missing:
            names = [row[0] for row in missing]
            lookup = pa.table(
                {
                    "name": names,
                    "forms": pa.array([list(given_name_forms(name)) for name in names], type=pa.list_(pa.string())),
                    "skeleton": [name_skeleton(name) for name in names],
                }
            )
            con.register("new_names", lookup)
            con.execute("INSERT INTO name_lookup SELECT * FROM new_names")
            con.unregister("new_names")

    # ---- model --------------------------------------------------------------------------------

    def _model_input_view(self, source: str, name: str) -> None:
        """The Splink input shape of a standardized table: `unique_id` plus the model input columns."""
        unique_id = "return_id" if source in (MASTER_STANDARDIZED, "master_profiles") else "unique_id"
        columns = ", ".join(column for column in MODEL_INPUT_COLUMNS if column != "unique_id")
        self.connection.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {unique_id} AS unique_id, {columns} FROM {source}"
        )

    def _has_table(self, name: str) -> bool:
        found = self.connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()
        return bool(found and found[0])

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
        # Every pair at one ZIP and house number was counted: these levels. (`place_typo`, the same
        # house of the same street in another place, is left to the sample: counting it would join
        # every house number of every street to itself, 5 s at 200k people.)
        counted_levels = {"exact", "line", "street_typo", "other_unit"}
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

    def _drop_splink_tables(self) -> None:
        leftovers = self.connection.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE '__splink__%'"
        ).fetchall()
        for name, kind in leftovers:
            keyword = "VIEW" if kind == "VIEW" else "TABLE"
            self.connection.execute(f'DROP {keyword} IF EXISTS "{name}"')

    # ---- scoring ------------------------------------------------------------------------------

    def _stage_requests(self, inputs: pa.Table) -> None:
        """Standardize request input rows (`request_input_table`) into the temp table request_inputs."""
        con = self.connection
        con.register("request_raw", inputs)
        con.execute("DROP TABLE IF EXISTS request_inputs")
        self._create_standardized(
            "request_inputs", "request_raw", "unique_id, request_index", temporary=True, order_by="unique_id"
        )
        con.unregister("request_raw")

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

    def score(self, requests: Sequence[tuple[int, RequestRecord]]) -> list[CandidatePair]:
        """Score valid requests (with their batch index) against the master: every blocked pair.

        A few requests (an on-demand lookup) take the point path: two statements, index point
        reads on each key column. A batch is staged and joined against the whole master. Both
        block on equal keys and score with the same compiled SQL, so they give the same pairs
        and the same probabilities (a test holds them to it).
        """
        if not requests:
            return []
        rows = list(_request_input_rows(requests))
        if len(rows) <= POINT_LOOKUP_MAX_REQUEST_ROWS:
            return self._score_points(rows)
        return self.score_batch(_input_table(rows)).pairs()

    def score_batch(self, inputs: pa.Table) -> ScoredPairs:
        """`score`'s pairs of a batch, given as `request_input_table(requests)`, still as Arrow
        columns: `ScoredPairs.pairs()` converts them (or a slice of them) without touching the
        database, in this process or a forked one."""
        _, scorer = self._scorer()
        self._stage_requests(inputs)
        carried = ("request_index", "return_id", "pair_tin", "suffix_l", "suffix_r", "tin_l")
        pairs_input = _scored_pairs_input_cte(
            scorer, "request_inputs", "master_profiles", self._profiles_have_term_frequencies(scorer)
        )
        query = (
            f"WITH {pairs_input}, "
            f"{scorer.common_table_expressions(carried)} "
            # Distinct evidence only (match.candidates.distinct_pairs), of candidate taxpayers only: the
            # grouping keeps every taxpayer's strongest pair, so filtering after it is the same filter.
            f"""SELECT request_index, min(return_id) AS return_id, pair_tin, match_probability, match_weight,
                       gamma_first_name, gamma_last_name, gamma_dob, gamma_address, gamma_tin,
                       coalesce(suffix_l, '') AS suffix_l, coalesce(suffix_r, '') AS suffix_r,
                       coalesce(tin_l, '') AS tin_l
            FROM scored_pairs
            GROUP BY request_index, pair_tin, match_probability, match_weight,
                     gamma_first_name, gamma_last_name, gamma_dob, gamma_address, gamma_tin,
                     coalesce(suffix_l, ''), coalesce(suffix_r, ''), coalesce(tin_l, '')
            QUALIFY max(match_weight) OVER (PARTITION BY request_index, pair_tin) >= {MIN_CANDIDATE_WEIGHT}
            ORDER BY request_index, return_id, match_weight DESC"""
        )
        labels = tuple(
            tuple(scorer.level_labels[name].get(gamma, "missing") for gamma in range(-1, 16))
            for name in ("first_name", "last_name", "dob", "address", "tin")
        )
        return ScoredPairs(self.connection.execute(query).to_arrow_table(), labels)

    def _python_scorer(self) -> PythonScorer:
        version, model = self.current_model()
        cached = self._python_scorers.get(version)
        if cached is None:
            term_frequencies = {
                column: dict(self.connection.execute(f"SELECT {column}, tf_{column} FROM tf_{column}").fetchall())
                for column in compile_scorer(model).term_frequency_columns
            }
            cached = self._python_scorers[version] = PythonScorer(model, term_frequencies)
        return cached

    def scoring_weights(self) -> tuple[float, dict[str, dict[str, float]]]:
        """The current model's prior match weight and each comparison's weight per level label
        (`PythonScorer.level_weights`): the terms a pair's match weight is the sum of, with its
        term-frequency adjustments."""
        scorer = self._python_scorer()
        return scorer.prior_weight, scorer.level_weights()

    def _point_rows_available(self) -> bool:
        """Whether master_profiles has `point_row` (a master loaded before it existed has not: its
        lookups read the columns themselves, slower, same values)."""
        if self._has_point_rows is None:
            found = self.connection.execute(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'master_profiles' AND column_name = 'point_row'"
            ).fetchone()
            self._has_point_rows = bool(found and found[0])
        return self._has_point_rows

    def _score_points(self, rows: list[tuple[Any, ...]]) -> list[CandidatePair]:
        """The on-demand path: standardize and score in Python, read candidates by index point reads.

        Same standardization, blocking keys, levels and weights as the batch query (each held to
        it by a test); what differs is only where the work runs.
        """
        scorer = self._python_scorer()
        standardized = [(row[0], row[1], _with_block_keys(standardize_row(*row[2:]))) for row in rows]
        self.attest_given_names([request for _, _, request in standardized])
        # Which request input rows each (key column, value) read serves: a pair exists when one of
        # the row's keys equals the return's, exactly as in the batch join.
        serves: dict[tuple[str, str], set[int]] = {}
        for position, (_, _, request) in enumerate(standardized):
            for request_column, master_column in BLOCK_KEY_JOINS:
                if request[request_column] is not None:
                    serves.setdefault((master_column, request[request_column]), set()).add(position)
        candidates: dict[int, dict[str, Any]] = {}
        blocked_rows: dict[int, set[int]] = {}
        if serves:
            # One statement of index point reads (literals, not parameters: DuckDB plans an ART
            # index scan only for a comparison with a constant); a statement costs more than a read.
            reads = sorted(serves)
            packed = self._point_rows_available()
            columns = "return_id, point_row" if packed else _CANDIDATE_COLUMNS
            union = " UNION ALL ".join(
                f"SELECT {number} AS read_number, {columns} FROM master_profiles "
                f"WHERE {master_column} = {_sql_literal(value)}"
                for number, (master_column, value) in enumerate(reads)
            )
            cursor = self.connection.execute(union)
            names = [description[0] for description in cursor.description]
            for found in cursor.fetchall():
                return_id = int(found[1])
                # A profile that several keys find comes once per key: its row is made once.
                if return_id not in candidates:
                    if packed:
                        candidate = dict(zip(_POINT_ROW_COLUMNS, json.loads(found[2]), strict=True))
                        candidate["return_id"] = found[1]
                    else:
                        candidate = dict(zip(names, found, strict=True))
                    candidates[return_id] = candidate
                blocked_rows.setdefault(return_id, set()).update(serves[reads[int(found[0])]])
        pairs: list[CandidatePair] = []
        for position, (_, request_index, request) in enumerate(standardized):
            for return_id in sorted(candidates):
                if position not in blocked_rows[return_id]:
                    continue
                candidate = candidates[return_id]
                scored = scorer.score(request, candidate)
                pairs.append(
                    CandidatePair(
                        request_index=int(request_index),
                        return_id=return_id,
                        tin=str(candidate["tin"]),
                        match_probability=scored.match_probability,
                        match_weight=scored.match_weight,
                        first_name_level=scored.levels["first_name"],
                        last_name_level=scored.levels["last_name"],
                        dob_level=scored.levels["dob"],
                        address_level=scored.levels["address"],
                        tin_level=scored.levels["tin"],
                        request_suffix=request["suffix"] or "",
                        return_suffix=candidate["suffix"] or "",
                        request_tin=request["tin"] or "",
                    )
                )
        strongest: dict[tuple[int, str], float] = {}
        for pair in pairs:
            key = (pair.request_index, pair.tin)
            strongest[key] = max(pair.match_weight, strongest.get(key, -math.inf))
        return distinct_pairs(
            [pair for pair in pairs if strongest[(pair.request_index, pair.tin)] >= MIN_CANDIDATE_WEIGHT]
        )

    def splink_reference_scores(self, requests: Sequence[tuple[int, RequestRecord]]) -> dict[tuple[int, int], float]:
        """Match probabilities from Splink's own predict() for the same requests: the oracle the tests hold
        the compiled scorer to. Keys are (request input row, return id)."""
        from splink import DuckDBAPI, Linker

        _, model = self.current_model()
        self._stage_requests(request_input_table(requests))
        self._model_input_view("request_inputs", "model_input_requests")
        self._model_input_view("master_profiles", "model_input_master")
        database_api = DuckDBAPI(connection=self.connection)
        left = database_api.register("model_input_requests")
        right = database_api.register("model_input_master")
        linker = Linker([left, right], copy.deepcopy(model), log_level=logging.WARNING)
        for column in compile_scorer(model).term_frequency_columns:
            lookup = database_api.register(f"tf_{column}")
            linker.table_management.register_term_frequency_lookup(lookup, column)
        predictions = linker.inference.predict(warning_mode="never")
        rows = self.connection.execute(
            f"SELECT unique_id_l, unique_id_r, match_probability FROM {predictions.physical_name}"
        ).fetchall()
        self._drop_splink_tables()
        return {(int(left_id), int(right_id)): float(probability) for left_id, right_id, probability in rows}

    def latest_returns(self, wanted: Sequence[tuple[int, str, int, int]]) -> dict[int, list[ReturnRow]]:
        """For each (key, tin, first year, last year): the taxpayer's most recent return in those years
        (as a list of at most one), primary before spouse, then lowest return id — the order of
        `returns_of`. A batch reads them in one join instead of every return of every taxpayer."""
        if len(wanted) <= POINT_LOOKUP_MAX_REQUEST_ROWS:
            by_tin = self.returns_of(tin for _, tin, _, _ in wanted)
            return {
                key: [row for row in by_tin.get(tin, []) if first <= row.tax_year <= last][:1]
                for key, tin, first, last in wanted
            }
        con = self.connection
        con.register(
            "wanted_returns",
            pa.table(
                {
                    "wanted_key": pa.array([key for key, _, _, _ in wanted], type=pa.int64()),
                    "tin": pa.array([tin for _, tin, _, _ in wanted], type=pa.string()),
                    "first_year": pa.array([first for _, _, first, _ in wanted], type=pa.int32()),
                    "last_year": pa.array([last for _, _, _, last in wanted], type=pa.int32()),
                }
            ),
        )
        # The latest return's id first, over the few columns that choose it; then its fields as
        # filed, for those rows only (0.45 -> 0.3 s for 73k taxpayers at 1M people).
        rows = con.execute(
            f"""WITH latest AS (
                SELECT w.wanted_key, m.return_id
                FROM master_returns m JOIN wanted_returns w
                  ON w.tin = m.tin AND m.tax_year BETWEEN w.first_year AND w.last_year
                QUALIFY row_number() OVER (PARTITION BY w.wanted_key ORDER BY m.tax_year DESC, m.role, m.return_id) = 1)
            SELECT latest.wanted_key, {_RETURN_COLUMNS}
            FROM master_returns m JOIN latest ON latest.return_id = m.return_id"""
        ).fetchall()
        con.unregister("wanted_returns")
        found: dict[int, list[ReturnRow]] = {key: [] for key, _, _, _ in wanted}
        for row in rows:
            found[int(row[0])] = [_return_row(row[1:])]
        return found

    def returns_of(self, tins: Iterable[str]) -> dict[str, list[ReturnRow]]:
        """Every return of a few TINs, most recent year first, primary before spouse.

        By index point reads (key_tin is the TIN): for the on-demand path; a batch uses the join
        of `latest_returns`.
        """
        wanted = sorted(set(tins))
        if not wanted:
            return {}
        reads = " UNION ALL ".join(
            f"SELECT {_RETURN_COLUMNS} FROM master_returns m WHERE key_tin = {_sql_literal(tin)}" for tin in wanted
        )
        # Ordered here, not by an ORDER BY: a sort operator costs a lookup ~0.5 ms, a few rows in
        # Python microseconds. Same order as the batch join's (ASCII role names, binary collation).
        returns = sorted(
            (_return_row(row) for row in self.connection.execute(reads).fetchall()),
            key=lambda found: (found.tin, -found.tax_year, found.role, found.return_id),
        )
        by_tin: dict[str, list[ReturnRow]] = {}
        for found in returns:
            by_tin.setdefault(found.tin, []).append(found)
        return by_tin

    def taxpayer_facts(self, tins: Iterable[str]) -> dict[str, TaxpayerFacts]:
        """Addresses, years of birth and middle initials over all profiles of each TIN (for the
        generation rule): index point reads for a few, one join for many."""
        wanted = sorted(set(tins))
        if not wanted:
            return {}
        columns = "p.tin, p.key_address, p.dob, p.middle_initial"
        if len(wanted) <= POINT_LOOKUP_MAX_REQUEST_ROWS:
            query = " UNION ALL ".join(
                f"SELECT {columns} FROM master_profiles p WHERE key_tin = {_sql_literal(tin)}" for tin in wanted
            )
            rows = self.connection.execute(query).fetchall()
        else:
            self.connection.register("wanted_tins", pa.table({"tin": pa.array(wanted, type=pa.string())}))
            rows = self.connection.execute(
                f"SELECT {columns} FROM master_profiles p JOIN wanted_tins w ON w.tin = p.key_tin"
            ).fetchall()
            self.connection.unregister("wanted_tins")
        found: dict[str, tuple[set[str], set[int], set[str]]] = {}
        for tin, address, dob, middle_initial in rows:
            addresses, birth_years, middle_initials = found.setdefault(str(tin), (set(), set(), set()))
            if address:
                addresses.add(str(address))
            if dob:
                birth_years.add(int(str(dob)[:4]))
            if middle_initial:
                middle_initials.add(str(middle_initial))
        return {
            tin: TaxpayerFacts(frozenset(addresses), frozenset(years), frozenset(initials))
            for tin, (addresses, years, initials) in found.items()
        }


@dataclass(frozen=True)
class ScoredPairs:
    """A batch's scored pairs as the query returned them (ordered by request index), and the
    level labels of their gammas: what `CandidatePair`s are made of."""

    table: pa.Table
    level_labels: tuple[tuple[str, ...], ...]  # first name, last name, dob, address, tin; gamma -1 first

    def split_before(self, request_index: int) -> tuple[ScoredPairs, ScoredPairs]:
        """The pairs of requests before `request_index`, and the rest (the table is ordered)."""
        before = pc.sum(pc.less(self.table["request_index"], request_index)).as_py() or 0
        return (
            ScoredPairs(self.table.slice(0, before), self.level_labels),
            ScoredPairs(self.table.slice(before), self.level_labels),
        )

    def of_requests(self, request_indexes: Iterable[int]) -> ScoredPairs:
        wanted = pa.array(sorted(set(request_indexes)), type=pa.int64())
        return ScoredPairs(self.table.filter(pc.is_in(self.table["request_index"], wanted)), self.level_labels)

    def best_probabilities(self) -> dict[int, float]:
        """Each request's highest match probability among its pairs (requests with pairs only)."""
        grouped = self.table.group_by("request_index").aggregate([("match_probability", "max")])
        return dict(
            zip(grouped["request_index"].to_pylist(), grouped["match_probability_max"].to_pylist(), strict=True)
        )

    def pairs(self) -> list[CandidatePair]:
        # Column by column through Arrow: a third of the cost of Python tuples row by row.
        columns = [column.to_pylist() for column in self.table.columns]
        # Gamma -1 (missing) is index 0 of each list of labels, hence the +1.
        for position, level_labels in zip(range(5, 10), self.level_labels, strict=True):
            columns[position] = [level_labels[gamma + 1] for gamma in columns[position]]
        return list(map(CandidatePair, *columns))


def _read_ahead(batches: Iterator[pa.Table], depth: int = 2) -> Iterator[pa.Table]:
    """The batches of `batches`, read on a thread up to `depth` ahead of the consumer.

    Parsing CSV is Python (it holds the GIL), inserting a batch is DuckDB (it releases it): done
    on two threads they overlap. Reading is sequential, so problems are reported in file order;
    an error while reading is raised here, in the consumer.
    """
    queue: Queue[tuple[pa.Table | None, BaseException | None]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put((batch, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((None, None))
        except BaseException as error:  # handed to the consumer, which raises it
            queue.put((None, error))

    reader = threading.Thread(target=produce, name="taxmatch-master-reader", daemon=True)
    reader.start()
    try:
        while True:
            batch, error = queue.get()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        reader.join()


_REQUEST_RAW_COLUMNS = (
    "first_name", "middle_name", "last_name", "suffix", "dob", "tin", "street", "unit", "city", "state", "zip",
)  # fmt: skip


def request_input_table(requests: Sequence[tuple[int, RequestRecord]]) -> pa.Table:
    """What a batch stages: one row per (request, address), numbered from 1 in request order.

    Pure (no database): a forked process builds the table of its half of a batch, and
    `renumbered` joins the halves into the table of the whole.
    """
    return _input_table(list(_request_input_rows(requests)))


def renumbered(inputs: pa.Table) -> pa.Table:
    """`inputs` with its rows numbered 1, 2, ... again (after halves are concatenated or filtered)."""
    return inputs.set_column(0, "unique_id", pa.array(range(1, inputs.num_rows + 1), type=pa.int64()))


def _input_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * (2 + len(_REQUEST_RAW_COLUMNS))
    return pa.table(
        {
            "unique_id": pa.array(columns[0], type=pa.int64()),
            "request_index": pa.array(columns[1], type=pa.int64()),
            **{
                column: pa.array(columns[2 + position], type=pa.string())
                for position, column in enumerate(_REQUEST_RAW_COLUMNS)
            },
        }
    )


def _request_input_rows(requests: Sequence[tuple[int, RequestRecord]]) -> Iterable[tuple[Any, ...]]:
    """One model input row per (request, address): the previous address and any prior addresses."""
    unique_id = 0
    for index, request in requests:
        addresses = [request.address, *request.prior_addresses]
        for address in addresses:
            unique_id += 1
            yield (
                unique_id,
                index,
                request.first_name,
                request.middle_name,
                request.last_name,
                request.suffix,
                _iso_date(request.dob),
                request.tin,
                address.street,
                address.unit,
                address.city,
                address.state,
                address.zip,
            )


def _iso_date(text: str | None) -> str | None:
    """The date as the model compares it (YYYY-MM-DD, zero-padded), by validation's own parser.

    One rule for both: every form validation accepts (`1980-1-2`, `1/2/1980`) compares equal to
    the return's `1980-01-02`. Text that is no date is kept as written (it cannot agree).
    """
    if not text:
        return None
    day = parse_date(text)
    return day.isoformat() if day is not None else text.strip()


_RETURN_COLUMNS = """m.return_id, m.tin, m.tax_year, m.role, m.first_name_raw, m.middle_name_raw, m.last_name_raw,
    m.suffix_raw, m.street_raw, m.unit_raw, m.city_raw, m.state_raw, m.zip_raw, m.phone_raw"""


_fill_return_row = field_filler(ReturnRow)


def _return_row(row: Sequence[Any]) -> ReturnRow:
    """A row of `_RETURN_COLUMNS` (ids and years are integers, the rest text or NULL) as a ReturnRow.

    By `field_filler`: a batch reads one per disclosure (0.28 -> 0.14 s for 73k).
    """
    return_id, tin, tax_year, role, first, middle, last, suffix, street, unit, city, state, zip_code, phone = row
    return _fill_return_row(
        return_id, tin, tax_year, role, first or "", middle or "", last or "", suffix or "",
        street or "", unit or "", city or "", state or "", zip_code or "", phone or "",
    )  # fmt: skip


def _with_block_keys(row: dict[str, Any]) -> dict[str, Any]:
    row.update(block_keys(row))
    return row


def _sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


_CANDIDATE_COLUMNS = ", ".join(("return_id", *(c for c in MODEL_INPUT_COLUMNS if c != "unique_id")))
_POINT_ROW_COLUMNS = tuple(c for c in MODEL_INPUT_COLUMNS if c != "unique_id")
# JSON keeps the lists (first_forms, surname_tokens) as lists and NULL as None: the values the
# columns give, so the Python scorer sees the same row whichever way it was read.
_POINT_ROW_SQL = f"CAST(json_array({', '.join(_POINT_ROW_COLUMNS)}) AS VARCHAR)"


def _standardized_ctes(source: str, carried_columns: str) -> str:
    """CTEs ending in `standardized`: carried columns, model input columns (but first_forms) and block keys.

    The standardization macros run on distinct values (names, street lines) and are joined back:
    the same macros on the same values, so the same result as calling them row by row.
    """
    return f"""name_values AS (
            SELECT DISTINCT value FROM (
                SELECT first_name AS value FROM {source} UNION ALL SELECT middle_name FROM {source}
                UNION ALL SELECT last_name FROM {source} UNION ALL SELECT city FROM {source})
            WHERE value IS NOT NULL),
        folded AS (SELECT value, tm_fold_name(value) AS folded FROM name_values),
        place_values AS (SELECT DISTINCT street AS place_street, unit AS place_unit FROM {source}),
        places AS (
            SELECT place_street, place_unit,
                   coalesce(nullif(tm_house_number(place_street), ''), nullif(tm_po_box(place_street), ''))
                       AS house_number,
                   tm_house_number(place_street) = '' AND tm_po_box(place_street) <> '' AS is_po_box,
                   tm_street_core(place_street) AS street_core,
                   nullif(tm_unit(place_unit, place_street), '') AS unit_standard
            FROM place_values),
        street_names AS ({street_name_sql("SELECT street_core FROM places")}),
        standardized_columns AS (
            SELECT {carried_columns}, {_MODEL_INPUT_SELECT}
            FROM {source} s
            LEFT JOIN folded first ON first.value = s.first_name
            LEFT JOIN folded middle ON middle.value = s.middle_name
            LEFT JOIN folded last ON last.value = s.last_name
            LEFT JOIN folded city ON city.value = s.city
            LEFT JOIN places place
              ON place.place_street IS NOT DISTINCT FROM s.street AND place.place_unit IS NOT DISTINCT FROM s.unit
            LEFT JOIN street_names n ON n.street_core = place.street_core),
        standardized AS (SELECT *, {block_key_select_sql()} FROM standardized_columns)"""


def _scored_pairs_input_cte(
    scorer: CompiledScorer, requests_relation: str, source: str, source_has_term_frequencies: bool = False
) -> str:
    """`scored_pairs_input`: each blocked (request row, return) pair once, with both sides' model columns.

    The pair ids come from one join per blocking key, each leaving out the pairs an earlier key
    already gave: a union of disjoint parts needs no de-duplication, and each join builds its
    hash table on the requests and streams the master's key column past it. The wide columns are
    then joined on, the master's side only for the profiles some pair names (a semi-join first).
    Term frequencies are joined to the requests before the pairs; the master's profiles carry
    theirs (`source_has_term_frequencies`, since `fit_model` stores them there), else they are
    joined to every pair, which costs ~0.4 s at 1.5M pairs.
    """
    sides = ", ".join(
        f"l.{column} AS {column}_l, r.{column} AS {column}_r" for column in MODEL_INPUT_COLUMNS if column != "unique_id"
    )
    parts = []
    for position, (request_column, master_column) in enumerate(BLOCK_KEY_JOINS):
        earlier = "".join(
            f" AND (l.{earlier_request} = r.{earlier_master}) IS NOT TRUE"
            for earlier_request, earlier_master in BLOCK_KEY_JOINS[:position]
        )
        parts.append(
            f"SELECT l.unique_id AS request_uid, r.return_id "
            f"FROM {requests_relation} l JOIN {source} r ON l.{request_column} = r.{master_column}{earlier}"
        )
    blocked = "\n        UNION ALL ".join(parts)
    columns = scorer.term_frequency_columns
    requests_with_frequencies = (
        f"(SELECT q.*{''.join(f', tf_{column}.tf_{column}' for column in columns)} FROM {requests_relation} q"
        + "".join(f" LEFT JOIN tf_{column} ON tf_{column}.{column} = q.{column}" for column in columns)
        + ")"
    )
    if source_has_term_frequencies:
        master_frequencies = "".join(f", r.tf_{column} AS tf_{column}_r" for column in columns)
        master_joins = ""
    else:
        master_frequencies = "".join(f", tfr_{column}.tf_{column} AS tf_{column}_r" for column in columns)
        master_joins = "".join(
            f" LEFT JOIN tf_{column} tfr_{column} ON tfr_{column}.{column} = r.{column}" for column in columns
        )
    request_frequencies = "".join(f", l.tf_{column} AS tf_{column}_l" for column in columns)
    return f"""blocked_pairs AS ({blocked}),
    scored_pairs_input AS (
        SELECT p.request_uid, p.return_id, l.request_index, r.tin AS pair_tin,
               {sides}{request_frequencies}{master_frequencies}
        FROM blocked_pairs p
        JOIN {requests_with_frequencies} l ON l.unique_id = p.request_uid
        JOIN (SELECT * FROM {source} WHERE return_id IN (SELECT return_id FROM blocked_pairs)) r
          ON r.return_id = p.return_id{master_joins})"""
