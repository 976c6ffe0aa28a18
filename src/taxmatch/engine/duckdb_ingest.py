"""Master load and request staging on DuckDB: files in, standardized tables out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from queue import Full, Queue

import pyarrow as pa

from taxmatch.engine.duckdb_sql import _POINT_ROW_SQL, _standardized_ctes
from taxmatch.engine.duckdb_tables import ATTESTED_GIVEN_NAMES, LOAD_MEMORY_LIMIT, MASTER_STANDARDIZED, DuckDBTables
from taxmatch.io.master import (
    MASTER_COLUMNS,
    MAX_REJECTED_SHARE,
    ROW_PROBLEM_SQL,
    MasterRowProblem,
    read_master,
    refuse_lossy_load,
)
from taxmatch.match.blocking import (
    CAPPED_KEY_COLUMNS,
    MASTER_KEY_COLUMNS,
    MAX_RETURNS_PER_CAPPED_KEY,
)
from taxmatch.match.model import (
    MODEL_INPUT_COLUMNS,
)
from taxmatch.standardize.names import given_name_forms, reference_given_names
from taxmatch.standardize.python_standardizer import name_skeleton


class MasterIngest(DuckDBTables):
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

    def _stage_requests(self, inputs: pa.Table) -> None:
        """Standardize request input rows (`request_input_table`) into the temp table request_inputs."""
        con = self.connection
        con.register("request_raw", inputs)
        con.execute("DROP TABLE IF EXISTS request_inputs")
        self._create_standardized(
            "request_inputs", "request_raw", "unique_id, request_index", temporary=True, order_by="unique_id"
        )
        con.unregister("request_raw")


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
