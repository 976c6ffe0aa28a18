"""`taxmatch keys ...` and `taxmatch serve`, mounted by taxmatch.cli:

    from taxmatch.api.cli import keys_app, serve
    app.add_typer(keys_app, name="keys")
    app.command()(serve)

Both take the workspace from ``ctx.obj`` (a `Workspace`). ``python -m taxmatch.api.cli
--home DIR keys ...`` runs them standalone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from taxmatch.api.keys import KeyError_, KeyStore, Role
from taxmatch.settings import Workspace

keys_app = typer.Typer(help="API keys for `taxmatch serve` (stored as hashes in the workspace).", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _store(ctx: typer.Context) -> KeyStore:
    workspace: Workspace = ctx.obj
    workspace.ensure()
    return KeyStore.for_workspace(workspace)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    agency: Annotated[
        str, typer.Option("--agency", help="The agency the key acts for (all its requests are this agency's).")
    ],
    role: Annotated[
        Role, typer.Option("--role", help="requester: lookups and batches; auditor: ledger verify; admin: both.")
    ],
) -> None:
    """Create an API key and print it once; only its hash is kept."""
    try:
        key, text = _store(ctx).create(agency, role)
    except KeyError_ as error:
        _fail(str(error))
    # The key alone on stdout so that scripts can capture it; the words go to stderr.
    print(text)
    err.print(f"key [bold]{key.key_id}[/] for agency {key.agency!r}, role {key.role.value}. "
              "This is the only time the key is shown: store it now.")  # fmt: skip


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """Every key: id, agency, role, created, revoked (never a secret)."""
    try:
        keys = _store(ctx).list()
    except KeyError_ as error:
        _fail(str(error))
    table = Table(title="API keys")
    for column in ("key id", "agency", "role", "created", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(key.key_id, key.agency, key.role.value, key.created, key.revoked or "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key id (from `keys list`).")]
) -> None:
    """Revoke a key; a running server refuses it from its next request."""
    try:
        key = _store(ctx).revoke(key_id)
    except KeyError_ as error:
        _fail(str(error))
    out.print(f"key {key.key_id} revoked at {key.revoked}")


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port, printed).")] = 8080,
) -> None:
    """Serve the HTTP API (docs at /docs) and the web dashboard (/ui). Holds the workspace database while it runs."""
    from taxmatch.api.server import run_server
    from taxmatch.database import DatabaseError
    from taxmatch.settings import PolicyError

    try:
        run_server(ctx.obj, host, port, announce=lambda line: err.print(line))
    except (DatabaseError, PolicyError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}")


_standalone = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
_standalone.add_typer(keys_app, name="keys")
_standalone.command()(serve)


@_standalone.callback()
def _standalone_callback(
    ctx: typer.Context, home: Annotated[Path | None, typer.Option("--home", help="Workspace directory.")] = None
) -> None:
    ctx.obj = Workspace.resolve(home)


if __name__ == "__main__":
    _standalone()
