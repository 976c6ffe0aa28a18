"""`taxmatch ledger ...` as the lead mounts it: the workspace comes from ctx.obj."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from taxmatch.database import connect
from taxmatch.ledger import Ledger
from taxmatch.ledger.cli import ledger_app
from taxmatch.settings import Workspace

from ledger_helpers import make_events


def make_app(workspace: Workspace) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context) -> None:
        ctx.obj = workspace

    app.add_typer(ledger_app, name="ledger")
    return app


def seed(workspace: Workspace, count: int) -> None:
    con = connect(workspace)
    Ledger(con).append(make_events(count))
    con.close()


def test_export_verify_public_key_checkpoint(workspace: Workspace, tmp_path: Path) -> None:
    runner = CliRunner()
    app = make_app(workspace)
    seed(workspace, 12)
    result = runner.invoke(app, ["ledger", "checkpoint"])
    assert result.exit_code == 0, result.output
    assert "entry 12" in result.output

    result = runner.invoke(app, ["ledger", "public-key", "--out", str(tmp_path / "pub.pem")])
    assert result.exit_code == 0 and result.output.startswith("-----BEGIN PUBLIC KEY-----")

    out = tmp_path / "ledger.jsonl"
    result = runner.invoke(app, ["ledger", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "12 entries" in result.output

    result = runner.invoke(app, ["ledger", "verify", "--file", str(out), "--public-key", str(tmp_path / "pub.pem")])
    assert result.exit_code == 0, result.output
    assert "ledger intact: 12 entries" in result.output

    result = runner.invoke(app, ["ledger", "verify", "--strict"])
    assert result.exit_code == 0, result.output  # export signed the head: nothing unverified

    lines = out.read_text(encoding="utf-8").splitlines()
    lines[6] = lines[6].replace('"REJECTED"', '"DISCLOSED"').replace('"NOT_MATCHED"', '"DISCLOSED"')
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pub = str(tmp_path / "pub.pem")
    result = runner.invoke(app, ["ledger", "verify", "--file", str(tampered), "--public-key", pub])
    assert result.exit_code == 1
    assert "first bad entry 6 (line 7)" in result.output

    result = runner.invoke(app, ["ledger", "verify", "--file", str(tampered), "--json"])
    assert result.exit_code == 1 and '"first_bad": 6' in result.output


def test_verify_fails_on_unsigned_entries_unless_allowed(workspace: Workspace) -> None:
    runner = CliRunner()
    app = make_app(workspace)
    seed(workspace, 3)
    for strict in ([], ["--strict"]):  # --strict is kept for old scripts: it is the default now
        result = runner.invoke(app, ["ledger", "verify", *strict])
        assert result.exit_code == 1
        assert "no signed checkpoint" in result.output and "--allow-unsigned-tail" in result.output
    result = runner.invoke(app, ["ledger", "verify", "--allow-unsigned-tail"])
    assert result.exit_code == 0, result.output
    assert "warning: no signed checkpoint" in result.output
    result = runner.invoke(app, ["ledger", "verify", "--strict", "--allow-unsigned-tail"])
    assert result.exit_code == 1 and "contradict" in result.output
    assert runner.invoke(app, ["ledger", "checkpoint"]).exit_code == 0
    assert runner.invoke(app, ["ledger", "verify"]).exit_code == 0


def test_verify_database_tampering_exits_non_zero(workspace: Workspace) -> None:
    runner = CliRunner()
    app = make_app(workspace)
    seed(workspace, 5)
    assert runner.invoke(app, ["ledger", "checkpoint"]).exit_code == 0
    con = connect(workspace)
    con.execute("UPDATE ledger_entries SET request_id = 'other' WHERE seq = 2")
    con.close()
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1
    assert "first bad entry 2" in result.output


def test_missing_key_is_a_clear_error(workspace: Workspace, tmp_path: Path) -> None:
    runner = CliRunner()
    app = make_app(workspace)
    seed(workspace, 1)
    (tmp_path / "keys" / "db.key").unlink()
    result = runner.invoke(app, ["ledger", "verify"])
    assert result.exit_code == 1
    assert "refusing to start" in result.output
    assert "Traceback" not in result.output
