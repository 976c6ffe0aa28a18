"""The global engine options (DESIGN.md section 2): --engine, --spark-master, --warehouse and their
environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from taxmatch.cli import EngineChoice
from taxmatch.engine.interface import ENGINE_NAMES, EngineOptions, EngineUnavailableError

TAXMATCH = str(Path(sys.executable).with_name("taxmatch"))


def test_the_cli_offers_exactly_the_engines_of_the_interface() -> None:
    assert tuple(choice.value for choice in EngineChoice) == ENGINE_NAMES


def test_options_default_to_duckdb_and_local_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAXMATCH_ENGINE", raising=False)
    monkeypatch.delenv("TAXMATCH_SPARK_MASTER", raising=False)
    assert EngineOptions.from_environment() == EngineOptions("duckdb", "local[*]", None)


def test_environment_chooses_when_the_command_line_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAXMATCH_ENGINE", "Spark")
    monkeypatch.setenv("TAXMATCH_SPARK_MASTER", "spark://cluster:7077")
    assert EngineOptions.from_environment() == EngineOptions("spark", "spark://cluster:7077", None)
    given = EngineOptions.from_environment("duckdb", "local[2]", "s3a://bucket/warehouse")
    assert given == EngineOptions("duckdb", "local[2]", "s3a://bucket/warehouse")


def test_an_unknown_engine_in_the_environment_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAXMATCH_ENGINE", "postgres")
    with pytest.raises(EngineUnavailableError, match="'postgres' is not one of: duckdb, spark"):
        EngineOptions.from_environment()


def test_an_unknown_engine_is_a_usage_error_without_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [TAXMATCH, "--home", str(tmp_path / "home"), "--engine", "postgres", "master", "load", "x.csv"],
        capture_output=True, text=True, timeout=120, check=False, env=os.environ,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert "--engine" in done.stderr and "postgres" in done.stderr
