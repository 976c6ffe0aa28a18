"""One suite over both engines (DESIGN.md section 2): the same inputs give byte-identical outcome
files on DuckDB and on Spark, through the real command (`taxmatch --engine ...`)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxmatch.cli import app
from taxmatch.database import open_database
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.interface import EngineOptions, open_engine
from taxmatch.settings import Workspace
from taxmatch.synth import generate

AS_OF = "2026-11-25"
OUTCOME_FILES = ("disclosed.csv", "rejected.csv", "unmatched.csv")
# Spark in local mode on two cores, as CI has: `local[*]` would ask for every core of a big machine.
SPARK_MASTER = "local[2]"


def taxmatch(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 people and 150 requests: more request rows than the point path takes (64), so a batch
    is scored by the engine's batch path (Spark's joins and executors)."""
    data = tmp_path_factory.mktemp("engines-population")
    generate(data, people=300, requests=150, seed=11, as_of=datetime.date.fromisoformat(AS_OF))
    return data


def run_engine(engine: str, population: Path, root: Path) -> tuple[Path, Path]:
    """`master load` then `batch run` with `--engine engine`; the workspace and the output folder."""
    home, out = root / "home", root / "out"
    options = ["--engine", engine, "--spark-master", SPARK_MASTER, "--home", str(home)]
    taxmatch(*options, "master", "load", str(population / "master.csv"))
    taxmatch(
        *options, "batch", "run", str(population / "requests.csv"), "--agency", "ICE", "--as-of", AS_OF,
        "--out", str(out),
    )  # fmt: skip
    return home, out


@pytest.fixture(scope="session")
def duckdb_run(population: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return run_engine("duckdb", population, tmp_path_factory.mktemp("engines-duckdb"))


@pytest.fixture(scope="session")
def engine_run(engine_name: str, population: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return run_engine(engine_name, population, tmp_path_factory.mktemp(f"engines-{engine_name}"))


def test_outcome_files_are_byte_identical_to_duckdb(
    engine_run: tuple[Path, Path], duckdb_run: tuple[Path, Path]
) -> None:
    (_, out), (_, reference) = engine_run, duckdb_run
    for name in OUTCOME_FILES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    manifest = json.loads((out / "manifest.json").read_text())
    expected = json.loads((reference / "manifest.json").read_text())
    assert manifest["counts"] == expected["counts"]
    assert manifest["model_version"] == expected["model_version"]
    # Every outcome is there: the batch is not all rejected (something was scored and disclosed).
    assert manifest["counts"]["disclosed"] > 50


def test_batch_reads_of_returns_and_facts_agree_with_the_point_reads(
    engine_name: str, engine_run: tuple[Path, Path]
) -> None:
    """The engine's reads for many taxpayers (Spark: joins over the warehouse) give what the
    workspace's point reads give for each."""
    home, _ = engine_run
    opened = open_database(Workspace.resolve(home))
    try:
        engine = open_engine(opened.connection, EngineOptions.from_environment(engine_name, SPARK_MASTER), home)
        points = DuckDBEngine(opened.connection)
        tins = [
            str(row[0])
            for row in opened.connection.execute(
                "SELECT DISTINCT tin FROM master_returns ORDER BY 1 LIMIT 100"
            ).fetchall()
        ]
        assert len(tins) > 64  # more than the point reads take: the engine's batch path
        wanted = [(key, tin, 2016 + key % 4, 2025) for key, tin in enumerate(tins)]
        expected_returns = {
            key: points.latest_returns([(key, tin, first, last)])[key] for key, tin, first, last in wanted
        }
        assert engine.latest_returns(wanted) == expected_returns
        assert any(expected_returns.values())
        expected_facts = {
            tin: facts for tin in tins for tin_found, facts in points.taxpayer_facts([tin]).items() if tin_found == tin
        }
        assert engine.taxpayer_facts(tins) == expected_facts
    finally:
        opened.connection.close()


def test_a_batch_on_a_master_loaded_by_another_engine_says_what_to_run(
    engine_name: str, duckdb_run: tuple[Path, Path], population: Path, tmp_path: Path
) -> None:
    """A workspace loaded by DuckDB has no warehouse: one clear line, nothing recorded (the Spark
    session is not even started: the local warehouse is checked first)."""
    if engine_name == "duckdb":
        pytest.skip("the DuckDB engine reads the workspace the load wrote: there is no other store to miss")
    home, _ = duckdb_run
    result = CliRunner().invoke(
        app,
        ["--engine", engine_name, "--home", str(home), "batch", "run", str(population / "requests.csv"),
         "--agency", "CBP", "--as-of", AS_OF, "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "has no master for model" in result.output and "--engine spark master load" in result.output
    assert not (tmp_path / "out").exists()
