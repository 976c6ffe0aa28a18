"""What each request of a batch was decided from, kept so that its page can explain it.

A lookup is explained as it is decided (`taxmatch.explain`). A batch request is explained later,
on its page (`/ui/batches/{id}/requests/{request_id}`), so the batch keeps what the decision path
handed its observer (`pipeline.decide_requests(observe=...)`): each scored request's candidate
pairs as the scorer produced them, the choice `choose_taxpayer` returned, the taxpayer facts the
generation rule read, and the model's prior and level weights. The page rebuilds the
`ObservedDecision` from these rows and `explanation_of` explains it exactly as it explains a
lookup. Nothing is scored or chosen again.

The rows hold candidate TINs: they are kept in the workspace database (encrypted, like the master)
and in no file, and `taxmatch purge` removes them with the batch's outcome files. They are written
in the transaction that appends the batch's ledger entries, so a batch has both or neither.
Requests are keyed by their position in the batch (0-based, input order): the order of the batch's
ledger entries.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from taxmatch.explain import ObservedDecision
from taxmatch.match.candidates import CandidatePair, TaxpayerFacts
from taxmatch.match.decide import Choice
from taxmatch.match.python_scorer import PythonScorer
from taxmatch.match.scored_pairs import ScoredPairs
from taxmatch.records import ReasonCode

__all__ = ["BatchScoring", "ScoringRecorder", "forget_batches", "recorded_decision", "save_scoring"]

PAIRS_TABLE: Final = "batch_scored_pairs"
CHOICES_TABLE: Final = "batch_choices"
CONTEXT_TABLE: Final = "batch_scoring"
_PAIR_COLUMNS: Final = CandidatePair._fields
_SQL_TYPES: Final = {"request_index": "BIGINT", "return_id": "BIGINT", "match_probability": "DOUBLE",
                     "match_weight": "DOUBLE"}  # fmt: skip
# A batch of millions decided chunk by chunk in one process hands over pair objects: they are made
# into columns every so many, so that what is kept is Arrow's size, not the objects'.
_PAIRS_HELD_AS_OBJECTS: Final = 200_000
_LEVEL_COLUMNS: Final = ("first_name_level", "last_name_level", "dob_level", "address_level", "tin_level")
_STORED_COLUMNS: Final = ("batch_id", "position", "pair_order", *_PAIR_COLUMNS)
_PAIR_SQL: Final = ", ".join(f"{name} {_SQL_TYPES.get(name, 'VARCHAR')}" for name in _PAIR_COLUMNS)
_SCHEMA: Final = (
    f"CREATE TABLE IF NOT EXISTS {PAIRS_TABLE} (batch_id VARCHAR NOT NULL, position BIGINT NOT NULL, "
    f"pair_order BIGINT NOT NULL, {_PAIR_SQL})",
    f"CREATE TABLE IF NOT EXISTS {CHOICES_TABLE} (batch_id VARCHAR NOT NULL, position BIGINT NOT NULL, "
    "chosen_tin VARCHAR, match_probability DOUBLE, evidence VARCHAR, reason_code VARCHAR)",
    f"CREATE TABLE IF NOT EXISTS {CONTEXT_TABLE} (batch_id VARCHAR PRIMARY KEY, model_version VARCHAR NOT NULL, "
    "facts_json VARCHAR NOT NULL)",
)


@dataclass
class ScoringRecorder:
    """An observer for `decide_requests` that keeps, by column, what each scored request was decided from.

    `positions`, if set, maps the index `decide_requests` reports to the request's position in the
    batch (the HTTP batches decide the requests of a chunk that are not duplicates).
    """

    positions: Sequence[int] | None = None
    _pairs: list[CandidatePair] = field(default_factory=list)
    _pair_positions: list[int] = field(default_factory=list)
    _pair_orders: list[int] = field(default_factory=list)
    _scored_tables: list[pa.Table] = field(default_factory=list)  # pairs as columns (as handed over, or made so)
    _next_order: int = 0
    _choices: list[tuple[int, str | None, float | None, str | None, str | None]] = field(default_factory=list)
    facts: dict[str, TaxpayerFacts] = field(default_factory=dict)
    _last_facts: Mapping[str, TaxpayerFacts] | None = None

    def __call__(
        self,
        index: int,
        pairs: Sequence[CandidatePair],
        facts: Mapping[str, TaxpayerFacts],
        choice: Choice | ReasonCode,
    ) -> None:
        position = self._position(index)
        self._pairs.extend(pairs)
        self._pair_positions.extend([position] * len(pairs))
        self._pair_orders.extend(range(self._next_order, self._next_order + len(pairs)))
        self._next_order += len(pairs)
        if len(self._pairs) >= _PAIRS_HELD_AS_OBJECTS:
            self._scored_tables.append(self._objects_table())
        self.take_choice(index, facts, choice)

    def _position(self, index: int) -> int:
        return self.positions[index] if self.positions is not None else index

    def take_scored(self, scored: ScoredPairs) -> None:
        """The pairs of a chunk's requests as the scorer returned them, still as Arrow (a large batch
        decided in two processes): kept as they are, which costs nothing like making them objects.
        Their choices follow through `take_choice`."""
        table = scored.table
        rows = table.num_rows
        indexes = table["request_index"]
        positions = indexes if self.positions is None else pc.take(pa.array(self.positions, pa.int64()), indexes)
        columns: dict[str, Any] = {
            "position": positions,
            "pair_order": pa.array(range(self._next_order, self._next_order + rows), pa.int64()),
        }
        for name, column in zip(_PAIR_COLUMNS, table.columns, strict=True):
            columns[name] = column
        # Gamma -1 (missing) is index 0 of each list of labels (as `ScoredPairs.pairs` reads them).
        for name, labels in zip(_LEVEL_COLUMNS, scored.level_labels, strict=True):
            columns[name] = pc.take(pa.array(labels, pa.string()), pc.add(columns[name], 1))
        self._scored_tables.append(
            pa.table({name: pc.cast(columns[name], _arrow_type(name)) for name in _STORED_COLUMNS[1:]})
        )
        self._next_order += rows

    def take_choice(self, index: int, facts: Mapping[str, TaxpayerFacts], choice: Choice | ReasonCode) -> None:
        """What request `index` was decided as, and the taxpayer facts the generation rule read."""
        position = self._position(index)
        if isinstance(choice, Choice):
            self._choices.append((position, choice.tin, choice.match_probability, choice.evidence, None))
        else:
            self._choices.append((position, None, None, None, choice.value))
        # One mapping per chunk, handed with each of its requests: merged once.
        if facts is not self._last_facts:
            self.facts.update(facts)
            self._last_facts = facts

    @property
    def scored(self) -> int:
        """Requests observed since the last `save_scoring`."""
        return len(self._choices)

    def clear(self) -> None:
        self._scored_tables.clear()
        self._pairs.clear()
        self._pair_positions.clear()
        self._pair_orders.clear()
        self._choices.clear()

    def _objects_table(self) -> pa.Table:
        """The pairs held as objects, as a table (and no longer held)."""
        columns = list(zip(*self._pairs, strict=True)) if self._pairs else [() for _ in _PAIR_COLUMNS]
        arrays: dict[str, Any] = {
            "position": pa.array(self._pair_positions, pa.int64()),
            "pair_order": pa.array(self._pair_orders, pa.int64()),
        }
        for name, values in zip(_PAIR_COLUMNS, columns, strict=True):
            arrays[name] = pa.array(values, _arrow_type(name))
        self._pairs.clear()
        self._pair_positions.clear()
        self._pair_orders.clear()
        return pa.table(arrays)

    def pairs_table(self, batch_id: str) -> pa.Table:
        table = pa.concat_tables([*self._scored_tables, self._objects_table()])
        return table.add_column(0, "batch_id", pa.array([batch_id] * table.num_rows, pa.string()))

    def choices_table(self, batch_id: str) -> pa.Table:
        positions, tins, probabilities, evidence, codes = (
            zip(*self._choices, strict=True) if self._choices else ((), (), (), (), ())
        )
        return pa.table(
            {
                "batch_id": pa.array([batch_id] * len(self._choices), pa.string()),
                "position": pa.array(positions, pa.int64()),
                "chosen_tin": pa.array(tins, pa.string()),
                "match_probability": pa.array(probabilities, pa.float64()),
                "evidence": pa.array(evidence, pa.string()),
                "reason_code": pa.array(codes, pa.string()),
            }
        )


def _arrow_type(name: str) -> pa.DataType:
    if name in ("position", "pair_order"):
        return pa.int64()
    return {"BIGINT": pa.int64(), "DOUBLE": pa.float64()}.get(_SQL_TYPES.get(name, ""), pa.string())


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for statement in _SCHEMA:
        con.execute(statement)


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    if not rows.num_rows:
        return
    con.register("scoring_rows", rows)
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM scoring_rows")
    finally:
        con.unregister("scoring_rows")


def _facts_json(facts: Mapping[str, TaxpayerFacts]) -> str:
    return json.dumps(
        {
            tin: [sorted(fact.addresses), sorted(fact.birth_years), sorted(fact.middle_initials)]
            for tin, fact in sorted(facts.items())
        }
    )


def save_scoring(con: duckdb.DuckDBPyConnection, batch_id: str, recorder: ScoringRecorder, model_version: str) -> None:
    """Add what `recorder` kept to the batch's rows (call it in the transaction of its ledger entries).

    Called once per chunk for a batch decided in chunks: the pairs and choices are added, and the
    batch's facts replaced by the union so far. The recorder is emptied of its pairs. The model's
    weights are not copied: the workspace keeps every fitted model by version (`model_store`), and
    reading them needs Splink, which a batch does without (tests/engine/test_scorer.py).
    """
    ensure_schema(con)
    _insert(con, PAIRS_TABLE, recorder.pairs_table(batch_id))
    _insert(con, CHOICES_TABLE, recorder.choices_table(batch_id))
    con.execute(
        f"INSERT OR REPLACE INTO {CONTEXT_TABLE} VALUES (?, ?, ?)",
        [batch_id, model_version, _facts_json(recorder.facts)],
    )
    recorder.clear()


@dataclass(frozen=True)
class BatchScoring:
    """One batch request's decision as it was observed, and the weights its waterfall is drawn with."""

    observed: ObservedDecision
    prior_weight: float
    level_weights: dict[str, dict[str, float]]


def _has_tables(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN (?, ?, ?) AND table_schema = 'main' "
        "AND table_catalog = current_database()",
        [PAIRS_TABLE, CHOICES_TABLE, CONTEXT_TABLE],
    ).fetchone()
    return row is not None and int(row[0]) == len(_SCHEMA)


def recorded_decision(con: duckdb.DuckDBPyConnection, batch_id: str, position: int) -> BatchScoring | None:
    """What the request at `position` of `batch_id` was decided from; None if it was not scored
    (rejected before matching) or its batch kept nothing (decided before batches kept it, or purged)."""
    if not _has_tables(con):
        return None
    context = con.execute(
        f"SELECT c.model_version, m.model_json, c.facts_json FROM {CONTEXT_TABLE} c "
        "LEFT JOIN model_store m ON m.version = c.model_version WHERE c.batch_id = ?",
        [batch_id],
    ).fetchone()
    choice_row = con.execute(
        f"SELECT chosen_tin, match_probability, evidence, reason_code FROM {CHOICES_TABLE} "
        "WHERE batch_id = ? AND position = ?",
        [batch_id, position],
    ).fetchone()
    if context is None or choice_row is None or context[1] is None:
        return None
    rows = con.execute(
        f"SELECT {', '.join(_PAIR_COLUMNS)} FROM {PAIRS_TABLE} WHERE batch_id = ? AND position = ? ORDER BY pair_order",
        [batch_id, position],
    ).fetchall()
    pairs = tuple(CandidatePair(*row) for row in rows)
    tins = {pair.tin for pair in pairs}
    facts = {
        tin: TaxpayerFacts(frozenset(addresses), frozenset(years), frozenset(initials))
        for tin, (addresses, years, initials) in json.loads(str(context[2])).items()
        if tin in tins
    }
    chosen_tin, probability, evidence, code = choice_row
    choice: Choice | ReasonCode = (
        Choice(str(chosen_tin), float(probability), str(evidence)) if code is None else ReasonCode(str(code))
    )
    prior_weight, level_weights = _model_weights(str(context[0]), str(context[1]))
    return BatchScoring(ObservedDecision(pairs, facts, choice), prior_weight, level_weights)


@functools.lru_cache(maxsize=4)
def _model_weights(version: str, model_json: str) -> tuple[float, dict[str, dict[str, float]]]:
    """The prior and per-level weights of one fitted model (the same as the engine's `scoring_weights`)."""
    scorer = PythonScorer(json.loads(model_json), {})
    return scorer.prior_weight, scorer.level_weights()


def forget_batches(con: duckdb.DuckDBPyConnection, batch_ids: Iterable[str]) -> None:
    """Remove what the batches kept for their explanations (with their outcome files, on purge)."""
    if not _has_tables(con):
        return
    for batch_id in batch_ids:
        for table in (PAIRS_TABLE, CHOICES_TABLE, CONTEXT_TABLE):
            con.execute(f"DELETE FROM {table} WHERE batch_id = ?", [batch_id])
