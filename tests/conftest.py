"""Suite-wide safety: no test may write a key into the real ~/.config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Session scope, so module-scoped workspaces created before any function fixture are covered too.
    config_home = tmp_path_factory.mktemp("config-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(config_home))
        patch.delenv("TAXMATCH_HOME", raising=False)
        patch.delenv("TAXMATCH_KEY_FILE", raising=False)
        patch.delenv("TAXMATCH_DB_KEY", raising=False)
        yield config_home


def _spark_unavailable() -> str | None:
    """Why Spark cannot run here (no pyspark, no Java), or None."""
    from taxmatch.engine.interface import EngineUnavailableError
    from taxmatch.engine.spark_engine import require_spark

    try:
        require_spark()
    except EngineUnavailableError as error:
        return str(error)
    return None


SPARK_UNAVAILABLE = _spark_unavailable()


@pytest.fixture(
    scope="session",
    params=[
        "duckdb",
        pytest.param("spark", marks=pytest.mark.skipif(SPARK_UNAVAILABLE is not None, reason=str(SPARK_UNAVAILABLE))),
    ],
)
def engine_name(request: pytest.FixtureRequest) -> str:
    """Each engine a test runs on (ibis style): `make install` brings pyspark, CI brings Java."""
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def _one_spark_session_per_test_session() -> Iterator[None]:
    # Tests start at most one local SparkSession (spark_session reuses it); stopped at the end.
    yield
    import sys

    if "pyspark" in sys.modules:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
