"""DuckDB execution: the master store, model fitting and batch scoring.

This module owns every table of the workspace database except the ledger's. SQL dialect
(standardization macros) comes from `standardize.sql`, model shape from `match.model`;
this module only runs them.

Tables:
- master_returns   one row per usable master row, raw display fields + model input columns
- model_store      fitted model JSON by version (the newest row is current)
- given_name_forms lookup from a folded given name to the names it may stand for
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from taxmatch.io.master import MASTER_COLUMNS, MasterRowProblem, read_master
from taxmatch.match.candidates import CandidatePair, ReturnRow
from taxmatch.match.model import MODEL_INPUT_COLUMNS, model_version, settings_creator
from taxmatch.records import RequestRecord
from taxmatch.standardize.names import given_name_forms, normalize_suffix
from taxmatch.standardize.sql import standardization_macros, street_name_sql, street_token_table_sql

logger = logging.getLogger(__name__)

U_SAMPLE_PAIRS = 2_000_000
U_SAMPLE_SEED = 20261125


class MasterNotLoadedError(RuntimeError):
    def __init__(self) -> None:
        super().__init__("no master file is loaded in this workspace; run `taxmatch master load FILE` first")


@dataclass(frozen=True)
class LoadReport:
    files: tuple[str, ...]
    rows_loaded: int
    rows_rejected: int
    taxpayers: int
    model_version: str
    seconds_load: float
    seconds_fit: float


_MODEL_INPUT_SELECT = """
    nullif(tm_fold_name(first_name), '') AS first_name,
    nullif(substr(tm_fold_name(middle_name), 1, 1), '') AS middle_initial,
    nullif(tm_fold_name(last_name), '') AS last_name,
    list_filter(string_split(tm_fold_name(last_name), ' '),
        t -> t <> '' AND t NOT IN ('DE', 'DEL', 'LA', 'LAS', 'LOS', 'Y', 'DA', 'DOS', 'VAN', 'VON')) AS surname_tokens,
    nullif(upper(replace(replace(coalesce(suffix, ''), '.', ''), ' ', '')), '') AS suffix,
    nullif(dob, '') AS dob,
    tm_tin(tin) AS tin,
    coalesce(nullif(tm_house_number(street), ''), nullif(tm_po_box(street), '')) AS house_number,
    CASE WHEN tm_house_number(street) = '' AND tm_po_box(street) <> '' THEN 'PO BOX'
         ELSE nullif(n.street_name, '') END AS street_name,
    nullif(tm_zip5(zip), '') AS zip5,
    nullif(tm_fold_name(city), '') AS city,
    nullif(tm_state(state), '') AS state
"""


class DuckDBEngine:
    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        for macro in standardization_macros():
            self.connection.execute(macro)
        self.connection.execute(street_token_table_sql())
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS model_store (version VARCHAR PRIMARY KEY, model_json VARCHAR, "
            "fitted_at TIMESTAMP DEFAULT current_timestamp, taxpayers BIGINT, returns BIGINT)"
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
    ) -> tuple[int, int]:
        """Replace the master with the rows of `files`. Returns (rows loaded, taxpayers).

        The new master is built beside the old one and swapped in one transaction, so a
        failed load leaves the previous master (and its model) untouched.
        """
        con = self.connection
        con.execute("DROP TABLE IF EXISTS master_staging")
        staging_columns = ", ".join(f"{column} VARCHAR" for column in (*MASTER_COLUMNS, "source_file"))
        con.execute(f"CREATE TABLE master_staging ({staging_columns}, source_line BIGINT)")
        for path in files:
            for batch in read_master(path, on_problem, on_bytes):
                con.register("master_batch", batch)
                con.execute("INSERT INTO master_staging SELECT * FROM master_batch")
                con.unregister("master_batch")
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DROP TABLE IF EXISTS master_returns")
            self._create_standardized(
                "master_returns",
                "master_staging",
                """row_number() OVER (ORDER BY source_file, source_line) AS return_id,
                   CAST(tax_year AS INTEGER) AS tax_year,
                   lower(role) AS role,
                   first_name AS first_name_raw, middle_name AS middle_name_raw,
                   last_name AS last_name_raw, suffix AS suffix_raw,
                   street AS street_raw, unit AS unit_raw, city AS city_raw, state AS state_raw,
                   zip AS zip_raw, phone AS phone_raw""",
                temporary=False,
            )
            con.execute("DROP TABLE master_staging")
            self._refresh_given_name_forms("master_returns")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        counts = con.execute("SELECT count(*), count(DISTINCT tin) FROM master_returns").fetchone()
        assert counts is not None
        return int(counts[0]), int(counts[1])

    def _create_standardized(self, target: str, source: str, carried_columns: str, *, temporary: bool) -> None:
        """CREATE TABLE target: carried columns plus the model input columns, standardized by the shared macros."""
        con = self.connection
        con.execute(
            "CREATE OR REPLACE TEMP TABLE tm_street_names AS "
            + street_name_sql(f"SELECT tm_street_core(street) AS street_core FROM {source}")
        )
        con.execute(
            f"CREATE {'TEMP ' if temporary else ''}TABLE {target} AS SELECT {carried_columns}, {_MODEL_INPUT_SELECT} "
            f"FROM {source} s LEFT JOIN tm_street_names n ON n.street_core = tm_street_core(s.street)"
        )
        con.execute("DROP TABLE tm_street_names")

    def _refresh_given_name_forms(self, table: str) -> None:
        con = self.connection
        con.execute("CREATE TABLE IF NOT EXISTS given_name_forms (first_name VARCHAR PRIMARY KEY, forms VARCHAR[])")
        missing = con.execute(
            f"SELECT DISTINCT first_name FROM {table} WHERE first_name IS NOT NULL "
            "AND first_name NOT IN (SELECT first_name FROM given_name_forms) ORDER BY 1"
        ).fetchall()
        if missing:
            names = [row[0] for row in missing]
            forms = [list(given_name_forms(name)) for name in names]
            lookup = pa.table({"first_name": names, "forms": pa.array(forms, type=pa.list_(pa.string()))})
            con.register("new_forms", lookup)
            con.execute("INSERT INTO given_name_forms SELECT * FROM new_forms")
            con.unregister("new_forms")

    # ---- model --------------------------------------------------------------------------------

    def _model_input_view(self, source: str, name: str) -> None:
        columns = ", ".join(
            f"g.forms AS {column}" if column == "first_forms" else f"s.{column}"
            for column in MODEL_INPUT_COLUMNS
            if column != "unique_id"
        )
        unique_id = "s.return_id" if source == "master_returns" else "s.unique_id"
        self.connection.execute(
            f"CREATE OR REPLACE VIEW {name} AS SELECT {unique_id} AS unique_id, {columns} "
            f"FROM {source} s LEFT JOIN given_name_forms g ON g.first_name = s.first_name"
        )

    def fit_model(self) -> str:
        """Estimate u from random pairs of the master; store and return the model version."""
        from splink import DuckDBAPI, Linker

        if not self.master_is_loaded():
            raise MasterNotLoadedError()
        counts = self.connection.execute("SELECT count(*), count(DISTINCT tin) FROM master_returns").fetchone()
        assert counts is not None
        returns, taxpayers = int(counts[0]), int(counts[1])
        self._model_input_view("master_returns", "model_input_master")
        database_api = DuckDBAPI(connection=self.connection)
        master = database_api.register("model_input_master")
        # A request and a random return belong to the same person with chance (returns per taxpayer) / returns.
        prior = min(0.5, 1.0 / max(taxpayers, 2))
        linker = Linker(master, settings_creator("dedupe_only", prior), log_level=logging.WARNING)
        linker.training.estimate_u_using_random_sampling(
            max_pairs=min(U_SAMPLE_PAIRS, max(10_000, returns * (returns - 1) / 2)), seed=U_SAMPLE_SEED
        )
        model = linker.misc.save_model_to_json()
        model["link_type"] = "link_only"
        model["linker_uid"] = "taxmatch"
        model.pop("sql_dialect", None)
        version = model_version(model)
        self.connection.execute(
            "INSERT OR REPLACE INTO model_store (version, model_json, taxpayers, returns) VALUES (?, ?, ?, ?)",
            [version, json.dumps(model, sort_keys=True), taxpayers, returns],
        )
        self._drop_splink_tables()
        return version

    def current_model(self) -> tuple[str, dict[str, Any]]:
        row = self.connection.execute(
            "SELECT version, model_json FROM model_store ORDER BY fitted_at DESC, version LIMIT 1"
        ).fetchone()
        if row is None:
            raise MasterNotLoadedError()
        loaded: dict[str, Any] = json.loads(row[1])
        return str(row[0]), loaded

    def _drop_splink_tables(self) -> None:
        leftovers = self.connection.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_name LIKE '__splink__%'"
        ).fetchall()
        for name, kind in leftovers:
            keyword = "VIEW" if kind == "VIEW" else "TABLE"
            self.connection.execute(f'DROP {keyword} IF EXISTS "{name}"')

    # ---- scoring ------------------------------------------------------------------------------

    def score(self, requests: Sequence[tuple[int, RequestRecord]]) -> list[CandidatePair]:
        """Score valid requests (with their batch index) against the master; every blocked pair."""
        from splink import DuckDBAPI, Linker

        if not requests:
            return []
        _, model = self.current_model()
        con = self.connection
        rows = list(_request_input_rows(requests))
        table = pa.table(
            {
                "unique_id": pa.array([row[0] for row in rows], type=pa.int64()),
                "request_index": pa.array([row[1] for row in rows], type=pa.int64()),
                **{
                    column: pa.array([row[2 + position] for row in rows], type=pa.string())
                    for position, column in enumerate(_REQUEST_RAW_COLUMNS)
                },
            }
        )
        con.register("request_raw", table)
        con.execute("DROP TABLE IF EXISTS request_inputs")
        self._create_standardized("request_inputs", "request_raw", "unique_id, request_index", temporary=True)
        con.unregister("request_raw")
        self._refresh_given_name_forms("request_inputs")
        self._model_input_view("request_inputs", "model_input_requests")
        self._model_input_view("master_returns", "model_input_master")
        database_api = DuckDBAPI(connection=con)
        left = database_api.register("model_input_requests")
        right = database_api.register("model_input_master")
        linker = Linker([left, right], model, log_level=logging.WARNING)
        predictions = linker.inference.predict(warning_mode="never")
        labels = _gamma_labels(model)
        result = con.execute(
            f"""SELECT r.request_index, p.unique_id_r, p.tin_r, p.match_probability,
                       p.gamma_first_name, p.gamma_last_name, p.gamma_dob, p.gamma_address,
                       coalesce(p.suffix_l, ''), coalesce(p.suffix_r, ''), coalesce(p.tin_l, ''), m.tax_year
                FROM {predictions.physical_name} p
                JOIN request_inputs r ON r.unique_id = p.unique_id_l
                JOIN master_returns m ON m.return_id = p.unique_id_r
                ORDER BY r.request_index, p.unique_id_r"""
        ).fetchall()
        self._drop_splink_tables()
        return [
            CandidatePair(
                request_index=int(row[0]),
                return_id=int(row[1]),
                tin=str(row[2]),
                match_probability=float(row[3]) if row[3] is not None and not math.isnan(row[3]) else 0.0,
                first_name_level=labels["first_name"].get(int(row[4]), "missing"),
                last_name_level=labels["last_name"].get(int(row[5]), "missing"),
                dob_level=labels["dob"].get(int(row[6]), "missing"),
                address_level=labels["address"].get(int(row[7]), "missing"),
                request_suffix=normalize_suffix(row[8]),
                return_suffix=normalize_suffix(row[9]),
                request_tin=str(row[10]),
                return_tax_year=int(row[11]),
            )
            for row in result
        ]

    def returns_of(self, tins: Iterable[str]) -> dict[str, list[ReturnRow]]:
        """Every return of each TIN, most recent year first, primary before spouse."""
        wanted = sorted(set(tins))
        if not wanted:
            return {}
        con = self.connection
        con.register("wanted_tins", pa.table({"tin": pa.array(wanted, type=pa.string())}))
        rows = con.execute(
            """SELECT return_id, m.tin, tax_year, role, first_name_raw, middle_name_raw, last_name_raw, suffix_raw,
                      street_raw, unit_raw, city_raw, state_raw, zip_raw, phone_raw
               FROM master_returns m JOIN wanted_tins w ON w.tin = m.tin
               ORDER BY m.tin, tax_year DESC, role, return_id"""
        ).fetchall()
        con.unregister("wanted_tins")
        by_tin: dict[str, list[ReturnRow]] = {}
        for row in rows:
            by_tin.setdefault(str(row[1]), []).append(
                ReturnRow(int(row[0]), str(row[1]), int(row[2]), str(row[3]), *(str(value or "") for value in row[4:]))
            )
        return by_tin


_REQUEST_RAW_COLUMNS = (
    "first_name", "middle_name", "last_name", "suffix", "dob", "tin", "street", "city", "state", "zip",
)  # fmt: skip


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
                address.city,
                address.state,
                address.zip,
            )


def _iso_date(text: str | None) -> str | None:
    """Requests may write a date as MM/DD/YYYY; the model compares ISO text."""
    if not text:
        return None
    parts = text.strip().split("/")
    if len(parts) == 3 and all(part.isdigit() for part in parts):
        month, day, year = parts
        return f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
    return text.strip()


def _gamma_labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    """Splink numbers the levels of a comparison from the bottom (else = 0); null is -1."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in model["comparisons"]:
        levels = comparison["comparison_levels"]
        non_null = [level for level in levels if not level.get("is_null_level")]
        mapping = {-1: "missing"}
        for position, level in enumerate(non_null):
            mapping[len(non_null) - 1 - position] = str(level.get("label_for_charts", ""))
        labels[comparison["output_column_name"]] = mapping
    return labels
