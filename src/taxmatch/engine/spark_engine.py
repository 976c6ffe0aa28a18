"""Spark execution of the same model (`--engine spark`): batches blocked and scored on a cluster.

What runs where (docs/scale.md says why):
- `master load` checks and standardizes the returns with the DuckDB ingest (the same code as the
  default engine), fits the model in the workspace, then writes what a batch reads — returns,
  profiles, attested given names, term frequencies and the model — as Parquet under the
  warehouse (`--warehouse`, any URI Spark writes), one folder per model version.
- `batch run` scores and decides each chunk in Spark (`score_and_choose`): the request rows are
  standardized on the executors (`spark_scoring.standardize_requests`, the Python twin of the
  standardization SQL), joined to the profiles on equal block keys in Spark SQL, and each
  request's pairs are scored and its taxpayer chosen on the executors by the point path's Python
  scorer and the decision code of `match/decide.py` (`spark_scoring.request_decider`); requests
  whose choice waits on Jr/Sr facts are chosen again there with the facts read by a join. The
  driver collects the choices (and the kept pairs, which the batch records for explanations),
  reads the disclosed returns, writes the same files and records the same ledger.
- Lookups (a few requests) and the API keep the DuckDB point reads of the workspace, which the
  same load fills.

pyspark is an optional extra (`taxmatch[spark]`); this module is imported only when Spark is asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.duckdb_points import _return_row
from taxmatch.engine.duckdb_tables import POINT_LOOKUP_MAX_REQUEST_ROWS
from taxmatch.engine.interface import ChunkChoices, EngineUnavailableError, MasterNotLoadedError
from taxmatch.engine.spark_scoring import (
    CHOICE_SCHEMA,
    DECIDED_SCHEMA,
    GAMMA_COMPARISONS,
    PROFILE_COLUMNS,
    SCORED_PAIRS_SCHEMA,
    SIDE_COLUMNS,
    STANDARDIZED_REQUEST_SCHEMA,
    choice_of,
    pair_scorer,
    request_decider,
    request_rechooser,
    spark_ddl,
    standardize_requests,
)
from taxmatch.io.master import MAX_REJECTED_SHARE, MasterRowProblem
from taxmatch.match.blocking import BLOCK_KEY_JOINS, MASTER_KEY_COLUMNS
from taxmatch.match.candidates import CandidatePair, ReturnRow, TaxpayerFacts, taxpayer_facts_of
from taxmatch.match.decide import Choice
from taxmatch.match.em import TrainingReport
from taxmatch.match.python_scorer import PythonScorer
from taxmatch.match.request_inputs import _input_table, _request_input_rows
from taxmatch.match.scored_pairs import ScoredPairs
from taxmatch.match.scorer import compile_scorer
from taxmatch.records import ReasonCode, RequestRecord
from taxmatch.settings import Policy

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

# Rows of a warehouse table handed to Spark at a time when it is written.
_WAREHOUSE_WRITE_ROWS = 250_000
_LOG4J2_CONFIGURATION = Path(__file__).with_name("spark_log4j2.properties")
_RETURN_FIELDS = (
    "return_id", "tin", "tax_year", "role", "first_name_raw", "middle_name_raw", "last_name_raw", "suffix_raw",
    "street_raw", "unit_raw", "city_raw", "state_raw", "zip_raw", "phone_raw",
)  # fmt: skip


def require_spark() -> None:
    """Refuse, naming what is missing, where Spark cannot start: pyspark or Java."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise EngineUnavailableError(
            "--engine spark needs pyspark, an optional extra: pip install 'taxmatch[spark]'"
        ) from None
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home) / "bin" / "java" if java_home else None
    if not (java is not None and java.exists()) and shutil.which("java") is None:
        raise EngineUnavailableError(
            "--engine spark needs Java 17 or newer: put `java` on PATH or set JAVA_HOME "
            "(Debian: apt-get install openjdk-17-jre-headless)"
        )


def spark_session(master: str) -> SparkSession:
    """The process's Spark session (one per process: Spark allows one context), started on first use."""
    require_spark()
    from pyspark.sql import SparkSession

    # Executors run this interpreter, which has taxmatch and its dependencies installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master(master)
        .appName("taxmatch")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_LOG4J2_CONFIGURATION.as_uri()}")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    # A chunk is at most 100k requests: one shuffle partition per core, not Spark's default 200
    # (each a task that starts a Python worker).
    session.conf.set("spark.sql.shuffle.partitions", str(session.sparkContext.defaultParallelism))
    return session


class SparkEngine:
    """`MatchingEngine` on Spark, over the workspace database `connection` (point reads, model, ledger)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, spark_master: str, warehouse: str) -> None:
        require_spark()
        self.workspace = DuckDBEngine(connection)
        self.spark_master = spark_master
        self.warehouse = warehouse.rstrip("/")
        self._scoring: tuple[str, PythonScorer, dict[str, dict[str, int]], tuple[tuple[str, ...], ...]] | None = None

    # ---- master and model: the workspace's, then written to the warehouse ----------------------

    def master_is_loaded(self) -> bool:
        return self.workspace.master_is_loaded()

    def load_master(
        self,
        files: Sequence[Path],
        on_problem: Callable[[MasterRowProblem], None],
        on_bytes: Callable[[int], None] = lambda _: None,
        max_rejected_share: float = MAX_REJECTED_SHARE,
    ) -> tuple[int, int]:
        self._scoring = None
        return self.workspace.load_master(files, on_problem, on_bytes, max_rejected_share)

    def fit_model(self) -> str:
        version = self.workspace.fit_model()
        self._write_warehouse(version)
        return version

    def current_model(self) -> tuple[str, dict[str, Any]]:
        return self.workspace.current_model()

    def train_m(self, requests: Sequence[tuple[int, RequestRecord]]) -> tuple[str, TrainingReport]:
        """m learned in the workspace (`DuckDBEngine.train_m`); the warehouse gets the new version,
        which is where a Spark batch reads its model from."""
        version, report = self.workspace.train_m(requests)
        self._scoring = None
        self._write_warehouse(version)
        return version, report

    def scoring_weights(self) -> tuple[float, dict[str, dict[str, float]]]:
        return self.workspace.scoring_weights()

    def _model_folder(self, version: str) -> str:
        return f"{self.warehouse}/{version}"

    def _write_warehouse(self, version: str) -> None:
        """What a batch reads, as Parquet under warehouse/VERSION/ (rewritten whole by each load)."""
        spark = spark_session(self.spark_master)
        connection = self.workspace.connection
        folder = self._model_folder(version)
        _, model = self.workspace.current_model()
        tables = {
            "returns": f"SELECT {', '.join(_RETURN_FIELDS)}, key_tin FROM master_returns ORDER BY return_id",
            "profiles": f"SELECT {', '.join(PROFILE_COLUMNS)} FROM master_profiles ORDER BY return_id",
            "attested_given_names": "SELECT name FROM attested_given_names ORDER BY name",
        }
        for column in compile_scorer(model).term_frequency_columns:
            tables[f"tf_{column}"] = f"SELECT {column} AS value, tf_{column} AS tf FROM tf_{column} ORDER BY 1"
        for name, query in tables.items():
            self._describe(f"write the warehouse's {name}")
            # In slices: a DataFrame made from driver-side Arrow passes whole through the driver
            # JVM's heap (1M people's 3M returns in one went past its default 1 GB).
            reader = connection.execute(query).to_arrow_reader(_WAREHOUSE_WRITE_ROWS)
            mode = "overwrite"
            for batch in reader:
                spark.createDataFrame(pa.Table.from_batches([batch])).write.mode(mode).parquet(f"{folder}/{name}")
                mode = "append"
            if mode == "overwrite":  # no rows: the table is still written, with its columns
                spark.createDataFrame(reader.schema.empty_table()).write.mode(mode).parquet(f"{folder}/{name}")
        self._describe("write the warehouse's model")
        model_row = pa.table({"version": [version], "model_json": [_model_json(model)]})
        spark.createDataFrame(model_row).coalesce(1).write.mode("overwrite").parquet(f"{folder}/model")

    def _describe(self, job: str) -> None:
        """Name the jobs this thread starts next (Spark's UI and event log show it per job)."""
        spark_session(self.spark_master).sparkContext.setJobDescription(f"taxmatch: {job}")

    def _table(self, name: str) -> DataFrame:
        version, _ = self.workspace.current_model()
        path = f"{self._model_folder(version)}/{name}"
        # A local warehouse is checked before Spark starts (a JVM start costs seconds); a remote
        # one by Spark's own error for a missing path.
        if "://" not in path and not Path(path).exists():
            raise _no_master_in(self.warehouse, version)
        spark = spark_session(self.spark_master)
        try:
            return spark.read.parquet(path)
        except Exception as error:  # Spark's AnalysisException: the path does not exist
            if "PATH_NOT_FOUND" in str(error) or "does not exist" in str(error).lower():
                raise _no_master_in(self.warehouse, version) from None
            raise

    def _scorer(self) -> tuple[PythonScorer, dict[str, dict[str, int]], tuple[tuple[str, ...], ...]]:
        """The warehouse's model as the executors score with it, with the gamma of each level label."""
        version, _ = self.workspace.current_model()
        if self._scoring is None or self._scoring[0] != version:
            self._describe("read the model and term frequencies")
            stored = self._table("model").collect()
            if len(stored) != 1 or stored[0]["version"] != version:
                raise MasterNotLoadedError(f"the warehouse {self.warehouse} holds no model {version}")
            model = json.loads(stored[0]["model_json"])
            compiled = compile_scorer(model)
            frequencies: dict[str, dict[str, float]] = {}
            for column in compiled.term_frequency_columns:
                table = self._table(f"tf_{column}").toArrow()
                frequencies[column] = dict(zip(table["value"].to_pylist(), table["tf"].to_pylist(), strict=True))
            gammas = {
                name: {label: gamma for gamma, label in compiled.level_labels[name].items()}
                for name in GAMMA_COMPARISONS
            }
            labels = tuple(
                tuple(compiled.level_labels[name].get(gamma, "missing") for gamma in range(-1, 16))
                for name in GAMMA_COMPARISONS
            )
            self._scoring = (version, PythonScorer(model, frequencies), gammas, labels)
        _, scorer, gammas, labels = self._scoring
        return scorer, gammas, labels

    # ---- scoring ------------------------------------------------------------------------------

    def score(self, requests: Sequence[tuple[int, RequestRecord]]) -> list[CandidatePair]:
        """A few requests (a lookup) by the workspace's point reads; more by `score_batch`."""
        if not requests:
            return []
        rows = list(_request_input_rows(requests))
        if len(rows) <= POINT_LOOKUP_MAX_REQUEST_ROWS:
            return self.workspace.score(requests)
        return self.score_batch(_input_table(rows)).pairs()

    def score_batch(self, inputs: pa.Table) -> ScoredPairs:
        scorer, gammas, labels = self._scorer()
        requests, sides = self._blocked_sides(inputs, with_unblocked=False)
        try:
            self._describe("block and score")
            scored = (
                sides.groupBy("request_index")
                .applyInArrow(pair_scorer(scorer, gammas), spark_ddl(SCORED_PAIRS_SCHEMA))
                .toArrow()
            )
        finally:
            requests.unpersist()
        return ScoredPairs(_in_pair_order(scored.cast(SCORED_PAIRS_SCHEMA)), labels)

    def score_and_choose(self, inputs: pa.Table, policy: Policy) -> ChunkChoices | None:
        """A chunk scored and decided on the executors (`spark_scoring.request_decider`: the decision
        code of `match.decide`); the driver collects each request's choice and kept pairs. A request
        left AMBIGUOUS for want of generation facts is chosen again on the executors, with the facts
        of the chunk's wanted TINs read by a join. None for a lookup's few rows (the point reads)."""
        if inputs.num_rows <= POINT_LOOKUP_MAX_REQUEST_ROWS:
            return None
        scorer, gammas, labels = self._scorer()
        requests, sides = self._blocked_sides(inputs, with_unblocked=True)
        try:
            self._describe("block, score and decide")
            decided = (
                sides.groupBy("request_index")
                .applyInArrow(request_decider(scorer, gammas, policy), spark_ddl(DECIDED_SCHEMA))
                .toArrow()
                .cast(DECIDED_SCHEMA)
            )
        finally:
            requests.unpersist()
        is_choice = pc.is_null(decided["return_id"])
        pairs = _in_pair_order(decided.filter(pc.invert(is_choice)).select(SCORED_PAIRS_SCHEMA.names))
        first = decided.filter(is_choice).select(CHOICE_SCHEMA.names).to_pylist()
        choices: dict[int, Choice | ReasonCode] = {int(row["request_index"]): choice_of(row) for row in first}
        wanted = {int(row["request_index"]): row["facts_wanted"] for row in first if row["facts_wanted"]}
        expected = set(inputs["request_index"].to_pylist())
        if set(choices) != expected:
            raise RuntimeError(f"Spark decided {len(choices)} requests of a chunk of {len(expected)}")
        facts: dict[str, TaxpayerFacts] = {}
        if wanted:
            facts = self.taxpayer_facts({tin for tins in wanted.values() for tin in tins})
        if facts:
            spark = spark_session(self.spark_master)
            again = pairs.filter(pc.is_in(pairs["request_index"], pa.array(sorted(wanted), pa.int64())))
            again = again.append_column("pair_order", pa.array(range(again.num_rows), pa.int64()))
            self._describe("decide again with generation facts")
            chosen_again = (
                spark.createDataFrame(again)
                .groupBy("request_index")
                .applyInArrow(request_rechooser(policy, labels, facts), spark_ddl(CHOICE_SCHEMA))
                .toArrow()
                .cast(CHOICE_SCHEMA)
                .to_pylist()
            )
            choices.update({int(row["request_index"]): choice_of(row) for row in chosen_again})
        return ChunkChoices(ScoredPairs(pairs, labels), choices, facts)

    def _blocked_sides(self, inputs: pa.Table, with_unblocked: bool) -> tuple[DataFrame, DataFrame]:
        """The standardized requests (cached: the caller unpersists them) and every blocked
        (request row, profile) pair with both sides' model input columns (`l_`/`r_`). With
        `with_unblocked`, a request row blocked with nothing is kept once, its profile side null."""
        from pyspark.sql import functions as F

        spark = spark_session(self.spark_master)
        attested = self._table("attested_given_names").select(
            F.col("name").alias("first_name"), F.lit(True).alias("attested")
        )
        # Standardized once: read by the key join and again for the pairs' request side.
        requests = (
            spark.createDataFrame(inputs)
            .mapInArrow(standardize_requests, spark_ddl(STANDARDIZED_REQUEST_SCHEMA))
            .drop("first_attested")
            .join(attested, "first_name", "left")
            .withColumn("first_attested", F.coalesce(F.col("attested"), F.lit(False)))
            .cache()
        )
        # Made here, in a job of its own: the standardization's time is then its own (Spark's
        # stages), and both readers read the cache.
        self._describe("standardize requests")
        requests.count()
        profiles = self._table("profiles")
        # Each blocking key's (column, value) of each side; a pair exists where any of them agree.
        request_keys = None
        for request_column, master_column in BLOCK_KEY_JOINS:
            part = requests.where(F.col(request_column).isNotNull()).select(
                "unique_id", F.lit(master_column).alias("key_column"), F.col(request_column).alias("key_value")
            )
            request_keys = part if request_keys is None else request_keys.unionByName(part)
        assert request_keys is not None
        master_keys = (
            profiles.select(
                "return_id",
                F.explode(
                    F.array(
                        *(
                            F.struct(F.lit(column).alias("key_column"), F.col(column).alias("key_value"))
                            for column in MASTER_KEY_COLUMNS
                        )
                    )
                ).alias("key"),
            )
            .select("return_id", "key.key_column", "key.key_value")
            .where(F.col("key_value").isNotNull())
        )
        blocked = (
            request_keys.join(master_keys, ["key_column", "key_value"]).select("unique_id", "return_id").distinct()
        )
        how = "left" if with_unblocked else "inner"
        sides = (
            requests.select(
                "unique_id", "request_index", *(F.col(column).alias(f"l_{column}") for column in SIDE_COLUMNS)
            )
            .join(blocked, "unique_id", how)
            .join(
                profiles.select("return_id", *(F.col(column).alias(f"r_{column}") for column in SIDE_COLUMNS)),
                "return_id",
                how,
            )
        )
        return requests, sides

    # ---- what is disclosed, and the generation rule's facts ----------------------------------

    def latest_returns(self, wanted: Sequence[tuple[int, str, int, int]]) -> dict[int, list[ReturnRow]]:
        """The DuckDB engine's rule (latest year, primary before spouse, lowest return id), by one
        Spark join over the warehouse's returns for a batch; by the workspace's point reads for a few."""
        if len(wanted) <= POINT_LOOKUP_MAX_REQUEST_ROWS:
            return self.workspace.latest_returns(wanted)
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        spark = spark_session(self.spark_master)
        wanted_frame = spark.createDataFrame(
            pa.table(
                {
                    "wanted_key": pa.array([key for key, _, _, _ in wanted], type=pa.int64()),
                    "wanted_tin": pa.array([tin for _, tin, _, _ in wanted], type=pa.string()),
                    "first_year": pa.array([first for _, _, first, _ in wanted], type=pa.int32()),
                    "last_year": pa.array([last for _, _, _, last in wanted], type=pa.int32()),
                }
            )
        )
        returns = self._table("returns")
        self._describe("read the disclosed returns")
        latest = Window.partitionBy("wanted_key").orderBy(F.desc("tax_year"), F.asc("role"), F.asc("return_id"))
        rows = (
            returns.join(
                wanted_frame,
                (returns["tin"] == wanted_frame["wanted_tin"])
                & returns["tax_year"].between(wanted_frame["first_year"], wanted_frame["last_year"]),
            )
            .withColumn("position", F.row_number().over(latest))
            .where(F.col("position") == 1)
            .select("wanted_key", *_RETURN_FIELDS)
            .toArrow()
            .to_pylist()
        )
        found: dict[int, list[ReturnRow]] = {key: [] for key, _, _, _ in wanted}
        for row in rows:
            found[int(row["wanted_key"])] = [_return_row([row[field] for field in _RETURN_FIELDS])]
        return found

    def returns_of(self, tins: Iterable[str]) -> dict[str, list[ReturnRow]]:
        return self.workspace.returns_of(tins)

    def taxpayer_facts(self, tins: Iterable[str]) -> dict[str, TaxpayerFacts]:
        wanted = sorted(set(tins))
        if len(wanted) <= POINT_LOOKUP_MAX_REQUEST_ROWS:
            return self.workspace.taxpayer_facts(wanted)
        spark = spark_session(self.spark_master)
        wanted_frame = spark.createDataFrame(pa.table({"key_tin": pa.array(wanted, type=pa.string())}))
        self._describe("read taxpayer facts")
        rows = (
            self._table("profiles")
            .join(wanted_frame, "key_tin")
            .select("tin", "key_address", "dob", "middle_initial")
            .toArrow()
            .to_pylist()
        )
        return taxpayer_facts_of((row["tin"], row["key_address"], row["dob"], row["middle_initial"]) for row in rows)


def _in_pair_order(table: pa.Table) -> pa.Table:
    """Pairs in the order the DuckDB batch query gives them (`ScoredPairs`)."""
    return table.sort_by([("request_index", "ascending"), ("return_id", "ascending"), ("match_weight", "descending")])


def _no_master_in(warehouse: str, version: str) -> MasterNotLoadedError:
    return MasterNotLoadedError(
        f"the warehouse {warehouse} has no master for model {version} (was it loaded with --engine duckdb?); "
        "run `taxmatch --engine spark master load FILE` to write it"
    )


def _model_json(model: dict[str, Any]) -> str:
    return json.dumps(model, sort_keys=True)
