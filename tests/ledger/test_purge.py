"""`taxmatch purge --older-than DAYS`: old batch outputs go, each removal is a ledger entry."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from taxmatch import database
from taxmatch.cli import app as taxmatch_app
from taxmatch.ledger import Ledger, signing_key
from taxmatch.ledger.cli import purge_command
from taxmatch.ledger.model import PURGED
from taxmatch.ledger.purge import TRASH_PREFIX, find_expired, purge_batches
from taxmatch.settings import Workspace
from taxmatch.synth import generate

DAY = 86_400


def purge_app(workspace: Workspace) -> typer.Typer:
    """The command mounted the way the lead mounts it in taxmatch.cli."""
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = workspace

    app.command("purge", help="Remove old batch outputs; record each removal in the ledger.")(purge_command)
    return app


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(tmp_path / "keys" / "db.key"))
    monkeypatch.delenv(database.DB_KEY_ENVIRONMENT_VARIABLE, raising=False)
    return Workspace(tmp_path / "home")


def age(path: Path, days: float) -> None:
    moment = time.time() - days * DAY
    os.utime(path, (moment, moment))


def entries(workspace: Workspace) -> list[tuple[int, str, str, str, list[str]]]:
    con = database.connect(workspace, read_only=True)
    try:
        rows = con.execute(
            "SELECT seq, outcome, agency, batch_id, fields_disclosed FROM ledger_entries ORDER BY seq"
        ).fetchall()
    finally:
        con.close()
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), list(r[4])) for r in rows]


def test_purge_after_real_batches(workspace: Workspace, tmp_path: Path) -> None:
    generate(tmp_path / "data", people=300, requests=120, seed=3, as_of=date(2026, 11, 25))
    runner = CliRunner()
    home = ["--home", str(workspace.home)]
    result = runner.invoke(taxmatch_app, [*home, "master", "load", str(tmp_path / "data" / "master.csv")])
    assert result.exit_code == 0, result.output
    batches: dict[str, Path] = {}
    for agency in ("ICE", "HSI"):
        existing = set(workspace.batches_dir.glob("*")) if workspace.batches_dir.exists() else set()
        requests = str(tmp_path / "data" / "requests.csv")
        result = runner.invoke(
            taxmatch_app, [*home, "batch", "run", requests, "--agency", agency, "--as-of", "2026-11-25"]
        )
        assert result.exit_code == 0, result.output
        (batches[agency],) = set(workspace.batches_dir.glob("*")) - existing
    old, recent = batches["ICE"], batches["HSI"]
    # The manifest says when the outcome files were written; that is what dates the batch.
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    assert datetime.fromisoformat(manifest["written_at"]).tzinfo is not None
    manifest["written_at"] = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    (old / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    age(old, 40)
    before = entries(workspace)
    assert len(before) == 240

    app = purge_app(workspace)
    result = runner.invoke(app, ["purge", "--older-than", "30", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"would remove {old.name} (ICE): 4 files" in result.output
    assert recent.name not in result.output and "kept 1" in result.output
    assert old.is_dir() and recent.is_dir() and entries(workspace) == before  # a dry run removes nothing

    result = runner.invoke(app, ["purge", "--older-than", "30"])
    assert result.exit_code == 0, result.output
    assert f"removed {old.name} (ICE)" in result.output and "ledger entries 241-241 (PURGED)" in result.output
    assert not old.exists() and recent.is_dir()
    assert sorted(path.name for path in workspace.batches_dir.iterdir()) == [recent.name]
    after = entries(workspace)
    assert after[:240] == before
    assert after[240] == (
        241,
        PURGED,
        "ICE",
        old.name,
        ["disclosed.csv", "manifest.json", "rejected.csv", "unmatched.csv"],
    )

    result = runner.invoke(taxmatch_app, [*home, "ledger", "verify", "--strict"])
    assert result.exit_code == 0, result.output  # the purge entry is chained and signed
    assert "ledger intact: 241 entries" in result.output

    today = datetime.now(UTC).date()
    span = ["--from", (today - timedelta(days=1)).isoformat(), "--to", (today + timedelta(days=1)).isoformat()]
    result = runner.invoke(
        taxmatch_app, [*home, "ledger", "report", *span, "--agency", "ICE", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    assert "ICE,(none cited),PURGED,1" in (tmp_path / "r" / "counts.csv").read_text(encoding="utf-8")

    result = runner.invoke(app, ["purge", "--older-than", "30"])
    assert result.exit_code == 0 and "removed 0 batch directories" in result.output
    assert len(entries(workspace)) == 241  # nothing removed, nothing recorded


def fake_batch(root: Path, name: str, manifest: dict[str, object] | None) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "disclosed.csv").write_text("request_id\n", encoding="utf-8")
    if manifest is not None:
        (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def test_manifest_time_wins_over_mtime(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old_by_manifest = fake_batch(
        tmp_path, "b-old", {"batch_id": "b-old", "agency": "A", "written_at": (now - timedelta(days=9)).isoformat()}
    )
    recent_by_manifest = fake_batch(
        tmp_path, "b-new", {"batch_id": "b-new", "agency": "A", "written_at": (now - timedelta(days=1)).isoformat()}
    )
    naive = fake_batch(tmp_path, "b-naive", {"written_at": "2001-01-01T00:00:00"})  # no zone: not trusted
    no_manifest = fake_batch(tmp_path, "b-bare", None)
    age(recent_by_manifest, 30)
    age(no_manifest, 30)
    candidates, kept = find_expired(tmp_path, 7, now)
    assert {(c.path.name, c.age_source) for c in candidates} == {("b-old", "manifest"), ("b-bare", "mtime")}
    assert kept == 2 and old_by_manifest.is_dir() and naive.is_dir()
    bare = next(c for c in candidates if c.path == no_manifest)
    assert bare.batch_id == "b-bare" and bare.agency == "" and bare.files == ("disclosed.csv",)


def test_failed_commit_restores_the_directory(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = fake_batch(workspace.batches_dir, "b-1", {"batch_id": "b-1", "agency": "A"})
    age(directory, 10)
    con = database.connect(workspace)
    ledger = Ledger(con)
    ledger.ensure_schema()

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="disk full"):
        patch.setattr(Ledger, "append", refuse)
        purge_batches(ledger, workspace.batches_dir, 7)
    con.close()
    assert directory.is_dir() and (directory / "disclosed.csv").is_file()
    assert not list(workspace.batches_dir.glob(TRASH_PREFIX + "*"))
    assert entries(workspace) == []


def test_leftover_of_an_interrupted_purge_goes_without_a_second_entry(workspace: Workspace) -> None:
    leftover = fake_batch(workspace.batches_dir, TRASH_PREFIX + "b-9", {"batch_id": "b-9"})
    con = database.connect(workspace)
    try:
        ledger = Ledger(con)
        ledger.ensure_schema()
        result = purge_batches(ledger, workspace.batches_dir, 7, signer=signing_key(workspace))
    finally:
        con.close()
    assert result.leftovers_removed == 1 and result.purged == () and result.checkpoint is None
    assert not leftover.exists() and entries(workspace) == []


def test_symlinks_are_not_followed(workspace: Workspace, tmp_path: Path) -> None:
    outside = fake_batch(tmp_path, "elsewhere", {"batch_id": "x"})
    age(outside, 100)
    workspace.batches_dir.mkdir(parents=True)
    (workspace.batches_dir / "b-link").symlink_to(outside, target_is_directory=True)
    candidates, kept = find_expired(workspace.batches_dir, 1, datetime.now(UTC))
    assert candidates == [] and kept == 0


def test_negative_days_are_refused(workspace: Workspace) -> None:
    result = CliRunner().invoke(purge_app(workspace), ["purge", "--older-than", "-1"])
    assert result.exit_code == 2 and not workspace.batches_dir.exists()
