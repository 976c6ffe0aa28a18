"""What the Spark engine runs on its executors: the Python twins of the DuckDB SQL, over Arrow batches.

No pyspark here: these are plain functions from Arrow to Arrow that `SparkEngine` hands to
`mapInArrow` and `applyInArrow`. They call exactly what the DuckDB point path calls
(`standardize_row`, `block_keys`, `PythonScorer.candidate_pair`, `strong_enough`), each held equal to the
batch SQL by the tests of the DuckDB engine, so a pair scored here has the gammas and weight the
SQL gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from taxmatch.match.blocking import BLOCK_KEY_JOINS, MASTER_KEY_COLUMNS, block_keys
from taxmatch.match.candidates import CandidatePair, TaxpayerFacts
from taxmatch.match.decide import Choice, choose_taxpayer, generation_facts_wanted, strong_enough
from taxmatch.match.model import MODEL_INPUT_COLUMNS
from taxmatch.match.python_scorer import PythonScorer
from taxmatch.match.request_inputs import _REQUEST_RAW_COLUMNS
from taxmatch.match.scored_pairs import ScoredPairs
from taxmatch.records import ReasonCode
from taxmatch.settings import Policy
from taxmatch.standardize.python_standardizer import standardize_row

# The model input columns of either side of a pair (unique_id is the pair's, not a column of a side).
SIDE_COLUMNS: tuple[str, ...] = tuple(column for column in MODEL_INPUT_COLUMNS if column != "unique_id")
# The key columns a request is blocked on (key_name_swapped has no master column of its own).
REQUEST_KEY_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(request for request, _ in BLOCK_KEY_JOINS))
_LIST_COLUMNS = frozenset({"first_forms", "surname_tokens"})
_BOOLEAN_COLUMNS = frozenset({"first_attested"})


def _arrow_type(column: str) -> pa.DataType:
    if column in _LIST_COLUMNS:
        return pa.list_(pa.string())
    if column in _BOOLEAN_COLUMNS:
        return pa.bool_()
    return pa.string()


# A standardized request input row: ids, the model input columns and the request's block keys.
STANDARDIZED_REQUEST_SCHEMA = pa.schema(
    [("unique_id", pa.int64()), ("request_index", pa.int64())]
    + [(column, _arrow_type(column)) for column in SIDE_COLUMNS]
    + [(column, pa.string()) for column in REQUEST_KEY_COLUMNS]
)
# What `score_request_pairs` returns: the columns of `ScoredPairs.table`, in its order.
SCORED_PAIRS_SCHEMA = pa.schema(
    [
        ("request_index", pa.int64()),
        ("return_id", pa.int64()),
        ("pair_tin", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
        ("gamma_first_name", pa.int32()),
        ("gamma_last_name", pa.int32()),
        ("gamma_dob", pa.int32()),
        ("gamma_address", pa.int32()),
        ("gamma_tin", pa.int32()),
        ("suffix_l", pa.string()),
        ("suffix_r", pa.string()),
        ("tin_l", pa.string()),
    ]
)
# A request's choice as the executors return it: a taxpayer, or the reason there is none, and the
# TINs whose facts the generation rule wants before it can say (empty unless the choice is AMBIGUOUS).
_CHOICE_FIELDS = [
    ("choice_tin", pa.string()),
    ("choice_probability", pa.float64()),
    ("choice_evidence", pa.string()),
    ("choice_reason", pa.string()),
    ("facts_wanted", pa.list_(pa.string())),
]
# What `request_decider` returns for a request: its kept pairs (the choice columns null) and one
# row of its choice (the pair columns null but request_index: return_id null marks it).
DECIDED_SCHEMA = pa.schema([*SCORED_PAIRS_SCHEMA, *(pa.field(name, kind) for name, kind in _CHOICE_FIELDS)])
CHOICE_SCHEMA = pa.schema([("request_index", pa.int64()), *_CHOICE_FIELDS])
GAMMA_COMPARISONS = ("first_name", "last_name", "dob", "address", "tin")
# Columns of a profile the executors need: what is scored, and the keys it is blocked on.
PROFILE_COLUMNS: tuple[str, ...] = ("return_id", *SIDE_COLUMNS, *MASTER_KEY_COLUMNS)


def spark_ddl(schema: pa.Schema) -> str:
    """The Spark SQL DDL of an Arrow schema of the types used here."""
    names = {
        pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.string(): "STRING", pa.bool_(): "BOOLEAN",
    }  # fmt: skip
    parts = []
    for field in schema:
        kind = "ARRAY<STRING>" if field.type == pa.list_(pa.string()) else names[field.type]
        parts.append(f"`{field.name}` {kind}")
    return ", ".join(parts)


def standardize_requests(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Request input rows (`request_input_table`) standardized with their block keys: what
    `_score_points` does to each row, `first_attested` left False (the engine joins it on)."""
    for batch in batches:
        out: list[dict[str, Any]] = []
        for row in batch.to_pylist():
            standardized = standardize_row(*(row[column] for column in _REQUEST_RAW_COLUMNS))
            out.append({"unique_id": row["unique_id"], "request_index": row["request_index"], **standardized})
            out[-1].update(block_keys(standardized))
        yield pa.RecordBatch.from_pylist(out, schema=STANDARDIZED_REQUEST_SCHEMA)


def pair_scorer(scorer: PythonScorer, level_gammas: Mapping[str, Mapping[str, int]]) -> Callable[[pa.Table], pa.Table]:
    """The function `applyInArrow` calls on each request's blocked pairs (`l_`/`r_` prefixed sides)."""

    def score_request_pairs(table: pa.Table) -> pa.Table:
        return scored_pairs_table(score_pairs(scorer, table.to_pylist()), level_gammas)

    return score_request_pairs


def score_pairs(scorer: PythonScorer, rows: Sequence[Mapping[str, Any]]) -> list[CandidatePair]:
    """Every blocked pair of some requests scored, then kept as `_score_points` keeps them: taxpayers
    whose strongest pair reaches MIN_CANDIDATE_WEIGHT, one pair per distinct piece of evidence."""
    pairs: list[CandidatePair] = []
    for row in sorted(rows, key=lambda found: (found["unique_id"], found["return_id"])):
        request = {column: row[f"l_{column}"] for column in SIDE_COLUMNS}
        candidate = {column: row[f"r_{column}"] for column in SIDE_COLUMNS}
        pairs.append(scorer.candidate_pair(int(row["request_index"]), int(row["return_id"]), request, candidate))
    return strong_enough(pairs)


def scored_pairs_table(pairs: Sequence[CandidatePair], level_gammas: Mapping[str, Mapping[str, int]]) -> pa.Table:
    """Pairs as the columns of `ScoredPairs.table` (levels back to the gammas the batch query gives)."""
    levels = (
        ("first_name", [pair.first_name_level for pair in pairs]),
        ("last_name", [pair.last_name_level for pair in pairs]),
        ("dob", [pair.dob_level for pair in pairs]),
        ("address", [pair.address_level for pair in pairs]),
        ("tin", [pair.tin_level for pair in pairs]),
    )
    columns: list[list[Any]] = [
        [pair.request_index for pair in pairs],
        [pair.return_id for pair in pairs],
        [pair.tin for pair in pairs],
        [pair.match_probability for pair in pairs],
        [pair.match_weight for pair in pairs],
        *([level_gammas[name][label] for label in labels] for name, labels in levels),
        [pair.request_suffix for pair in pairs],
        [pair.return_suffix for pair in pairs],
        [pair.request_tin for pair in pairs],
    ]
    return pa.Table.from_arrays(
        [pa.array(column, type=field.type) for column, field in zip(columns, SCORED_PAIRS_SCHEMA, strict=True)],
        schema=SCORED_PAIRS_SCHEMA,
    )


def _in_scored_order(pairs: Sequence[CandidatePair]) -> list[CandidatePair]:
    """Pairs in the order a collected batch gives them to the pipeline (`ScoredPairs`: return id,
    then the stronger first), so that every tie in the decision is broken as on the driver."""
    return sorted(pairs, key=lambda pair: (pair.return_id, -pair.match_weight))


def first_choice(pairs: Sequence[CandidatePair], policy: Policy) -> tuple[Choice | ReasonCode, frozenset[str]]:
    """The pipeline's first choice of a request (`pipeline._first_choices`): the taxpayer without
    generation facts, and the TINs whose facts could change an AMBIGUOUS answer."""
    choice = choose_taxpayer(pairs, policy)
    return choice, generation_facts_wanted(pairs, policy) if choice is ReasonCode.AMBIGUOUS else frozenset()


def _choice_row(request_index: int, choice: Choice | ReasonCode, wanted: frozenset[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"request_index": request_index, "facts_wanted": sorted(wanted)}
    if isinstance(choice, Choice):
        row.update(choice_tin=choice.tin, choice_probability=choice.match_probability, choice_evidence=choice.evidence)
        row["choice_reason"] = None
    else:
        row.update(choice_tin=None, choice_probability=None, choice_evidence=None, choice_reason=choice.value)
    return row


def choice_of(row: Mapping[str, Any]) -> Choice | ReasonCode:
    """A choice row (`CHOICE_SCHEMA`) back to what `choose_taxpayer` returned."""
    if row["choice_reason"] is not None:
        return ReasonCode(row["choice_reason"])
    return Choice(str(row["choice_tin"]), float(row["choice_probability"]), str(row["choice_evidence"]))


def request_decider(
    scorer: PythonScorer, level_gammas: Mapping[str, Mapping[str, int]], policy: Policy
) -> Callable[[pa.Table], pa.Table]:
    """The function `applyInArrow` calls on each request's blocked pairs (`l_`/`r_` sides; a row
    with a null return_id stands for a request blocked with nothing): its kept pairs scored, and
    its first choice by the decision code (`match.decide`)."""

    def decide_request(table: pa.Table) -> pa.Table:
        request_index = int(table["request_index"][0].as_py())
        rows = [row for row in table.to_pylist() if row["return_id"] is not None]
        pairs = _in_scored_order(score_pairs(scorer, rows))
        choice, wanted = first_choice(pairs, policy)
        scored = scored_pairs_table(pairs, level_gammas)
        nulls = {name: pa.nulls(scored.num_rows, kind) for name, kind in _CHOICE_FIELDS}
        kept = pa.Table.from_arrays([*scored.columns, *nulls.values()], schema=DECIDED_SCHEMA)
        decision = pa.Table.from_pylist([_choice_row(request_index, choice, wanted)], DECIDED_SCHEMA)
        return pa.concat_tables([kept, decision])

    return decide_request


def request_rechooser(
    policy: Policy, level_labels: tuple[tuple[str, ...], ...], facts: Mapping[str, TaxpayerFacts]
) -> Callable[[pa.Table], pa.Table]:
    """The function `applyInArrow` calls on the kept pairs of a request whose first choice wanted
    generation facts (`SCORED_PAIRS_SCHEMA` columns and `pair_order`, their order on the driver):
    its choice again with the chunk's facts, as `pipeline._decided_with_facts` makes it."""

    def rechoose_request(table: pa.Table) -> pa.Table:
        ordered = table.sort_by("pair_order").select(SCORED_PAIRS_SCHEMA.names).cast(SCORED_PAIRS_SCHEMA)
        pairs = ScoredPairs(ordered, level_labels).pairs()
        choice = choose_taxpayer(pairs, policy, facts)
        return pa.Table.from_pylist([_choice_row(pairs[0].request_index, choice, frozenset())], CHOICE_SCHEMA)

    return rechoose_request
