"""`load_master` + `fit_model` replace the master and its model together, or not at all (issue 13, finding 4)."""

from __future__ import annotations

import datetime
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.synth import generate

# A process that loads a master into a database file and is killed (SIGKILL, no clean-up) right
# after `load_master` returned, that is after the swap and before the model is fitted.
LOAD_THEN_DIE = """
import os, signal, sys
from pathlib import Path
import duckdb
from taxmatch.engine.duckdb_engine import DuckDBEngine
engine = DuckDBEngine(duckdb.connect(sys.argv[1]))
engine.load_master([Path(sys.argv[2])], lambda problem: None)
os.kill(os.getpid(), signal.SIGKILL)
"""


def master_state(database: Path) -> tuple[str, int, int]:
    """(current model version, returns, the returns the current model was fitted on)."""
    connection = duckdb.connect(str(database))
    try:
        engine = DuckDBEngine(connection)
        version, _ = engine.current_model()
        returns = connection.execute("SELECT count(*) FROM master_returns").fetchone()
        fitted_on = connection.execute("SELECT returns FROM model_store WHERE version = ?", [version]).fetchone()
        assert returns is not None and fitted_on is not None
        return version, int(returns[0]), int(fitted_on[0])
    finally:
        connection.close()


@pytest.fixture(scope="module")
def masters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("masters")
    as_of = datetime.date(2026, 11, 25)
    generate(root / "old", people=300, requests=10, seed=11, as_of=as_of)
    generate(root / "new", people=450, requests=10, seed=12, as_of=as_of)
    return root / "old" / "master.csv", root / "new" / "master.csv"


def loaded(database: Path, master: Path) -> tuple[str, int, int]:
    connection = duckdb.connect(str(database))
    try:
        engine = DuckDBEngine(connection)
        engine.load_master([master], lambda problem: None)
        engine.fit_model()
    finally:
        connection.close()
    return master_state(database)


@pytest.mark.slow
def test_a_load_killed_between_swap_and_fit_leaves_the_old_master_and_model(
    tmp_path: Path, masters: tuple[Path, Path]
) -> None:
    old_master, new_master = masters
    database = tmp_path / "workspace.duckdb"
    before = loaded(database, old_master)
    version, returns, fitted_on = before
    assert returns == fitted_on
    child = subprocess.run(
        [sys.executable, "-c", LOAD_THEN_DIE, str(database), str(new_master)], capture_output=True, timeout=300
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode(errors="replace")
    # The old master with its own model, never the new master under the old model's label.
    assert master_state(database) == before
    # And the next load finishes the job.
    after = loaded(database, new_master)
    assert after[0] != version and after[1] == after[2] != returns


def test_a_failed_fit_rolls_back_the_swapped_master(
    tmp_path: Path, masters: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    old_master, new_master = masters
    database = tmp_path / "workspace.duckdb"
    before = loaded(database, old_master)

    def broken_fit(self: DuckDBEngine, model: object, returns: int) -> None:
        raise RuntimeError("the fit failed half way")

    monkeypatch.setattr(DuckDBEngine, "_count_address_u", broken_fit)
    connection = duckdb.connect(str(database))
    try:
        engine = DuckDBEngine(connection)
        engine.load_master([new_master], lambda problem: None)
        with pytest.raises(RuntimeError, match="half way"):
            engine.fit_model()
        # On the same connection too: the old master and model serve on.
        version, _ = engine.current_model()
        assert version == before[0]
    finally:
        connection.close()
    assert master_state(database) == before


@pytest.mark.slow
def test_a_master_loaded_again_serves_under_its_own_model(tmp_path: Path, masters: tuple[Path, Path]) -> None:
    # Found by benchmarks/crash.py: refitting a master gives the model version it had before, and
    # the store kept that row's first fitting time, so after A, B, A the current model was B's.
    old_master, new_master = masters
    database = tmp_path / "workspace.duckdb"
    first = loaded(database, old_master)
    other = loaded(database, new_master)
    again = loaded(database, old_master)
    assert first[0] != other[0]
    assert again == first
