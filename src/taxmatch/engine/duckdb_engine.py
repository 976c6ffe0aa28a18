"""DuckDB execution of the matching engine (`engine.interface.MatchingEngine`).

The jobs live in their own modules: `duckdb_ingest` (master load, request staging), `duckdb_fit`
(Splink), `duckdb_points` (on-demand reads), `duckdb_sql` (SQL text), `duckdb_tables` (the workspace tables and the
current model) and `m_training` (m learned from requests); this class joins them and runs the batch query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa

from taxmatch.engine.duckdb_fit import ModelFit
from taxmatch.engine.duckdb_ingest import MasterIngest
from taxmatch.engine.duckdb_points import PointReads
from taxmatch.engine.duckdb_sql import _scored_pairs_input_cte
from taxmatch.engine.duckdb_tables import POINT_LOOKUP_MAX_REQUEST_ROWS
from taxmatch.engine.m_training import train_m
from taxmatch.match.candidates import CandidatePair
from taxmatch.match.decide import MIN_CANDIDATE_WEIGHT
from taxmatch.match.em import TrainingReport
from taxmatch.match.model import model_version
from taxmatch.match.request_inputs import _input_table, _request_input_rows
from taxmatch.match.scored_pairs import ScoredPairs
from taxmatch.match.scorer import compile_scorer
from taxmatch.records import RequestRecord


class DuckDBEngine(MasterIngest, ModelFit, PointReads):
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

    def train_m(self, requests: Sequence[tuple[int, RequestRecord]]) -> tuple[str, TrainingReport]:
        """Learn m from valid requests by EM over their blocked pairs (`engine.m_training`) and store
        the model with it (the master's u unchanged) as the current model; return its version.

        Committed alone: the master is not touched, and a batch or lookup after this one reads the
        new version (its manifest names it). `master load` fits the priors again.
        """
        version, model = self.current_model()
        scorer = compile_scorer(model)
        self._stage_requests(_input_table(list(_request_input_rows(requests))))
        trained, report = train_m(self.connection, model, scorer, "request_inputs", "master_profiles")
        trained_version = model_version(trained)
        self.connection.execute(
            "INSERT OR REPLACE INTO model_store (version, model_json, fitted_at, taxpayers, returns) "
            "SELECT ?, ?, current_timestamp, taxpayers, returns FROM model_store WHERE version = ?",
            [trained_version, json.dumps(trained, sort_keys=True), version],
        )
        self._current_model = None
        return trained_version, report
