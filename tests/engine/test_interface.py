"""The engine boundary: what may import what (DESIGN.md section 6), and the interface's shape."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import taxmatch
from taxmatch.engine import interface
from taxmatch.engine.duckdb_engine import DuckDBEngine

PACKAGE = Path(taxmatch.__file__).parent
# Modules that open the workspace's DuckDB file themselves (the ledger's store and the database
# it lives in): the only ones outside engine/ allowed to import duckdb.
DUCKDB_OUTSIDE_ENGINE = {
    "database.py",
    "ledger/store.py",
    "ledger/audit.py",
    "ledger/batches.py",
    "ledger/report.py",
    "ledger/export_report.py",
    "ledger/batch_explanations.py",
    "api/batches.py",
    "api/service.py",
    "api/running.py",
    "cli.py",
}
# The modules that drive an engine: they see engine/ only through its interface.
ENGINE_CLIENTS = ("pipeline.py", "cli.py", "explain.py", "api/service.py", "api/app.py", "api/operator.py")


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules_outside_engine() -> list[tuple[str, Path]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] != "engine"
    ]


def test_no_module_outside_engine_imports_pyspark() -> None:
    offenders = [
        name
        for name, path in _modules_outside_engine()
        if any(module == "pyspark" or module.startswith("pyspark.") for module in _imported_modules(path))
    ]
    assert offenders == []


def test_duckdb_is_imported_outside_engine_only_by_the_workspace_store() -> None:
    offenders = [
        name
        for name, path in _modules_outside_engine()
        if name not in DUCKDB_OUTSIDE_ENGINE
        and any(module == "duckdb" or module.startswith("duckdb.") for module in _imported_modules(path))
    ]
    assert offenders == []


def test_engine_clients_import_only_the_interface_from_engine() -> None:
    found = {
        name: sorted(
            module
            for module in _imported_modules(PACKAGE / name)
            if module.startswith("taxmatch.engine") and not module.startswith("taxmatch.engine.interface")
        )
        for name in ENGINE_CLIENTS
    }
    assert found == {name: [] for name in ENGINE_CLIENTS}


def test_duckdb_engine_implements_every_operation_of_the_interface() -> None:
    wanted = {
        name
        for name, member in inspect.getmembers(interface.MatchingEngine)
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert wanted == {
        "master_is_loaded", "load_master", "fit_model", "current_model", "score", "score_batch",
        "latest_returns", "returns_of", "taxpayer_facts", "scoring_weights", "train_m",
    }  # fmt: skip
    for name in wanted:
        ours = inspect.signature(getattr(DuckDBEngine, name))
        declared = inspect.signature(getattr(interface.MatchingEngine, name))
        assert list(ours.parameters) == list(declared.parameters), name


def test_only_the_fit_module_imports_splink() -> None:
    importers = sorted(
        path.name
        for path in (PACKAGE / "engine").glob("*.py")
        if any(module == "splink" or module.startswith("splink.") for module in _imported_modules(path))
    )
    assert importers == ["duckdb_fit.py"]
