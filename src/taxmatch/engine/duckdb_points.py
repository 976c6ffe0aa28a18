"""Point reads on DuckDB: the on-demand scoring path and the reads of returns and taxpayer facts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from taxmatch.engine.duckdb_candidate_index import CandidateIndex, ReturnIndex
from taxmatch.engine.duckdb_sql import _CANDIDATE_COLUMNS, _POINT_ROW_COLUMNS, _RETURN_COLUMNS, _sql_literal
from taxmatch.engine.duckdb_tables import ATTESTED_GIVEN_NAMES, POINT_LOOKUP_MAX_REQUEST_ROWS, DuckDBTables
from taxmatch.engine.interface import MasterNotLoadedError
from taxmatch.match.blocking import (
    BLOCK_KEY_JOINS,
    block_keys,
)
from taxmatch.match.candidates import CandidatePair, ReturnRow, TaxpayerFacts, taxpayer_facts_of
from taxmatch.match.decide import strong_enough
from taxmatch.match.python_scorer import PythonScorer
from taxmatch.match.scorer import compile_scorer
from taxmatch.records import field_filler
from taxmatch.standardize.python_standardizer import standardize_row


class PointReads(DuckDBTables):
    # The in-memory blocking and returns of `warm_for_lookups` (None: read by DuckDB statements).
    _candidate_index: CandidateIndex | None = None
    _return_index: ReturnIndex | None = None

    def warm_for_lookups(self, like: object = None) -> None:
        """Serve this engine's lookups from an in-memory candidate index: `like`'s, an engine of the
        same database that has one (the server's lookup engines share one), else one built now.

        For the server, at start: a CLI run would spend seconds building it for a few lookups.
        Nothing when no master is loaded or its profiles have no `point_row` (an older master:
        its lookups keep the statement reads).
        """
        if not (self.master_is_loaded() and self._point_rows_available()):
            return
        try:
            version, _ = self.current_model()
        except MasterNotLoadedError:
            return  # no usable model: every lookup answers that error, as it did
        candidates = like._candidate_index if isinstance(like, PointReads) else None
        returns = like._return_index if isinstance(like, PointReads) else None
        if candidates is None or candidates.model_version != version:
            candidates = CandidateIndex.build(self.connection, version)
        if returns is None or returns.model_version != version:
            returns = ReturnIndex.build(self.connection, version, _RETURN_COLUMNS)
        self._candidate_index, self._return_index = candidates, returns

    def _current_candidate_index(self) -> CandidateIndex | None:
        """The warmed index while the model it was built under is current. The server cannot see the
        master change under it (it holds the database; `master load` needs it stopped, and the
        next start builds the index again); should this engine's own fit replace the model, its
        lookups go back to the statement reads rather than serve a stale index."""
        index = self._candidate_index
        if index is not None and index.model_version != self.current_model()[0]:
            index = self._candidate_index = self._return_index = None
        return index

    def _current_return_index(self) -> ReturnIndex | None:
        """The warmed returns while their model is current (as `_current_candidate_index`)."""
        index = self._return_index
        if index is not None and index.model_version != self.current_model()[0]:
            index = self._candidate_index = self._return_index = None
        return index

    def attest_given_names(self, rows: Sequence[dict[str, Any]]) -> None:
        """Set `first_attested` on standardized request rows, as the batch join does."""
        if self._attested_names is None:
            # Read whole, once per engine: the distinct given names of the master and the nickname
            # tables (thousands; a few MB for a large real master), where a statement per lookup
            # cost ~0.8 ms of its CPU at 200k people. Only a load on this engine replaces them
            # (`load_master` forgets them); a master loaded before the table existed has none, and
            # no request name is attested, as in the join.
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
        index = self._current_candidate_index()
        candidates, blocked_rows = (
            self._read_candidates(serves) if index is None else _candidates_from_index(index, serves)
        )
        pairs: list[CandidatePair] = []
        for position, (_, request_index, request) in enumerate(standardized):
            for return_id in sorted(candidates):
                if position not in blocked_rows[return_id]:
                    continue
                pairs.append(scorer.candidate_pair(int(request_index), return_id, request, candidates[return_id]))
        return strong_enough(pairs)

    def _read_candidates(
        self, serves: dict[tuple[str, str], set[int]]
    ) -> tuple[dict[int, dict[str, Any]], dict[int, set[int]]]:
        """The candidate profiles of `serves`' (master column, value) reads, by DuckDB index point reads:
        each profile's model input columns by return id, and which request rows each one serves."""
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
        return candidates, blocked_rows

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

        By key_tin (the TIN), from the warmed `ReturnIndex` or by index point reads: for the
        on-demand path; a batch uses the join of `latest_returns`.
        """
        wanted = sorted(set(tins))
        if not wanted:
            return {}
        index = self._current_return_index()
        if index is not None:
            rows: list[tuple[Any, ...]] = [row for tin in wanted for row in index.rows_of(tin)]
        else:
            reads = " UNION ALL ".join(
                f"SELECT {_RETURN_COLUMNS} FROM master_returns m WHERE key_tin = {_sql_literal(tin)}" for tin in wanted
            )
            rows = self.connection.execute(reads).fetchall()
        # Ordered here, not by an ORDER BY: a sort operator costs a lookup ~0.5 ms, a few rows in
        # Python microseconds. Same order as the batch join's (ASCII role names, binary collation).
        returns = sorted(
            (_return_row(row) for row in rows),
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
        return taxpayer_facts_of(rows)


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


def _candidates_from_index(
    index: CandidateIndex, serves: dict[tuple[str, str], set[int]]
) -> tuple[dict[int, dict[str, Any]], dict[int, set[int]]]:
    """`PointReads._read_candidates` from the in-memory index: the same profiles (those whose master
    key column equals the value), the same rows (their `point_row`), the same request rows served."""
    candidates: dict[int, dict[str, Any]] = {}
    blocked_rows: dict[int, set[int]] = {}
    for (master_column, value), served in serves.items():
        for position in index.positions_of(master_column, value):
            return_id = index.return_id(position)
            if return_id not in candidates:
                candidate = dict(zip(_POINT_ROW_COLUMNS, json.loads(index.point_row(position)), strict=True))
                candidate["return_id"] = return_id
                candidates[return_id] = candidate
            blocked_rows.setdefault(return_id, set()).update(served)
    return candidates, blocked_rows


def _with_block_keys(row: dict[str, Any]) -> dict[str, Any]:
    row.update(block_keys(row))
    return row
