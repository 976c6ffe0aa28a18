"""A synthetic master loaded and fitted in memory, and its requests: what the engine tests score."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.io.requests import read_requests
from taxmatch.records import RequestRecord
from taxmatch.synth import generate

FittedEngine = Callable[..., tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]]


@pytest.fixture(scope="session")
def fitted_engine() -> FittedEngine:
    return _fitted_engine


def _fitted_engine(
    data: Path, *, people: int, requests: int, seed: int
) -> tuple[DuckDBEngine, list[tuple[int, RequestRecord]]]:
    """An in-memory engine with a synthetic master loaded and its model fitted, and the requests
    of that synthetic set that could be read (with their batch index)."""
    generate(data, people=people, requests=requests, seed=seed, as_of=datetime.date(2026, 11, 25))
    engine = DuckDBEngine(duckdb.connect())
    engine.load_master([data / "master.csv"], lambda problem: None)
    engine.fit_model()
    readable = [(index, item) for index, item in enumerate(read_requests(data / "requests.csv"))
                if isinstance(item, RequestRecord)]  # fmt: skip
    return engine, readable
