"""The engine interface: what the pipeline, the CLI and the API ask of an execution engine.

`MatchingEngine` names exactly the operations they use; `DuckDBEngine` (default) and
`SparkEngine` implement it. `open_engine` builds the one an `EngineOptions` names. Modules
outside `engine/` import only this module from it (a test holds them to that), so neither
`duckdb` nor `pyspark` leaks into the pipeline through the engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

from taxmatch.io.master import MAX_REJECTED_SHARE, MasterRowProblem
from taxmatch.match.candidates import CandidatePair, ReturnRow, TaxpayerFacts
from taxmatch.match.decide import Choice
from taxmatch.match.em import TrainingReport
from taxmatch.match.request_inputs import renumbered, request_input_table
from taxmatch.match.scored_pairs import ScoredPairs
from taxmatch.records import ReasonCode, RequestRecord
from taxmatch.settings import Policy

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "ENGINE_NAMES",
    "ChoosesWhereItScores",
    "ChunkChoices",
    "EngineOptions",
    "EngineUnavailableError",
    "MasterNotLoadedError",
    "MatchingEngine",
    "ModelOutdatedError",
    "ScoredPairs",
    "open_engine",
    "prepare_for_lookups",
    "renumbered",
    "request_input_table",
]

EngineName = Literal["duckdb", "spark"]
ENGINE_NAMES: tuple[EngineName, ...] = ("duckdb", "spark")
DEFAULT_SPARK_MASTER = "local[*]"


class MatchingEngine(Protocol):
    """Load the master, fit the model, score requests and read what is disclosed.

    `score` takes a few requests (a lookup) or a chunk; `score_batch` takes a chunk as
    `request_input_table` Arrow rows and returns its pairs still as Arrow columns.
    """

    def master_is_loaded(self) -> bool: ...

    def load_master(
        self,
        files: Sequence[Path],
        on_problem: Callable[[MasterRowProblem], None],
        on_bytes: Callable[[int], None] = ...,
        max_rejected_share: float = MAX_REJECTED_SHARE,
    ) -> tuple[int, int]: ...

    def fit_model(self) -> str: ...

    def current_model(self) -> tuple[str, dict[str, Any]]: ...

    def score(self, requests: Sequence[tuple[int, RequestRecord]]) -> list[CandidatePair]: ...

    def score_batch(self, inputs: pa.Table) -> ScoredPairs: ...

    def latest_returns(self, wanted: Sequence[tuple[int, str, int, int]]) -> dict[int, list[ReturnRow]]: ...

    def returns_of(self, tins: Iterable[str]) -> dict[str, list[ReturnRow]]: ...

    def taxpayer_facts(self, tins: Iterable[str]) -> dict[str, TaxpayerFacts]: ...

    def scoring_weights(self) -> tuple[float, dict[str, dict[str, float]]]: ...

    def train_m(self, requests: Sequence[tuple[int, RequestRecord]]) -> tuple[str, TrainingReport]: ...


@dataclass(frozen=True)
class ChunkChoices:
    """A chunk of requests scored and decided in one place (`ChoosesWhereItScores`)."""

    scored: ScoredPairs  # each request's kept candidate pairs: what its choice was made from
    choices: Mapping[int, Choice | ReasonCode]  # every request of the chunk, by request index
    facts: Mapping[str, TaxpayerFacts]  # what the generation rule read, by TIN


@runtime_checkable
class ChoosesWhereItScores(Protocol):
    """An engine that applies the decision code (`match.decide`) where it scores — Spark, on its
    executors — so that the pipeline collects each request's choice instead of making it.

    `score_and_choose` returns None for a chunk it leaves to the pipeline (a lookup's few rows,
    which the point reads score).
    """

    def score_and_choose(self, inputs: pa.Table, policy: Policy) -> ChunkChoices | None: ...


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


class EngineUnavailableError(RuntimeError):
    """The engine asked for cannot run here (e.g. Spark without pyspark or Java)."""


@dataclass(frozen=True)
class EngineOptions:
    """The global options that choose and place the engine (DESIGN.md section 2)."""

    engine: EngineName = "duckdb"
    spark_master: str = DEFAULT_SPARK_MASTER
    # Where the Spark engine keeps the master and model; None: `warehouse` under the workspace.
    warehouse: str | None = None

    @classmethod
    def from_environment(
        cls, engine: str | None = None, spark_master: str | None = None, warehouse: str | None = None
    ) -> EngineOptions:
        """Options given on the command line, else from TAXMATCH_ENGINE / TAXMATCH_SPARK_MASTER, else defaults."""
        chosen = (engine or os.environ.get("TAXMATCH_ENGINE") or "duckdb").strip().lower()
        if chosen not in ENGINE_NAMES:
            raise EngineUnavailableError(f"engine {chosen!r} is not one of: {', '.join(ENGINE_NAMES)}")
        master = spark_master or os.environ.get("TAXMATCH_SPARK_MASTER") or DEFAULT_SPARK_MASTER
        return cls("spark" if chosen == "spark" else "duckdb", master, warehouse)


def open_engine(
    connection: duckdb.DuckDBPyConnection, options: EngineOptions | None = None, home: Path | None = None
) -> MatchingEngine:
    """The engine `options` name, over the workspace database `connection` (its point reads and ledger).

    Imported here, not at the top: DuckDB's modules load only when an engine is opened, Spark's
    only when Spark is asked for.
    """
    options = options or EngineOptions()
    if options.engine == "spark":
        from taxmatch.engine.spark_engine import SparkEngine

        warehouse = options.warehouse or str((home or Path(".")) / "warehouse")
        return SparkEngine(connection, options.spark_master, warehouse)
    from taxmatch.engine.duckdb_engine import DuckDBEngine

    return DuckDBEngine(connection)


def prepare_for_lookups(engines: Sequence[MatchingEngine]) -> None:
    """Build what engines keep in memory for on-demand lookups (DuckDB: the candidate index of
    `engine.duckdb_candidate_index`) now, before the first lookup, once for engines over cursors of
    one database: the first builds it, the others share it. For a server's lookup engines; not
    part of `MatchingEngine` (an engine without such state has nothing to do)."""
    first: MatchingEngine | None = None
    for engine in engines:
        warm = getattr(engine, "warm_for_lookups", None)
        if callable(warm):
            warm(first)
            first = first or engine
