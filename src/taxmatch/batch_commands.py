"""`taxmatch batch list` and `taxmatch batch show ID`: the operator's view of the workspace's batches.

Mounted by taxmatch.cli on its ``batch`` group. Both read the ledger (`taxmatch.ledger.batches`)
read-only, so they list batches from the command line and from the HTTP API alike; while
`taxmatch serve` holds the workspace, they read a copy of the ledger and batch tables that the
server takes for them (`api.running.ledger_connection`), as `ledger verify` does. Nothing
printed names a person: ids, agencies, counts and times only.
"""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from taxmatch.api.running import ServerError, ledger_connection
from taxmatch.database import DatabaseError
from taxmatch.ledger.batches import BatchDetail, BatchSummary, batch_detail, list_batches
from taxmatch.records import REASON_TEXT, ReasonCode
from taxmatch.settings import Workspace

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _workspace(ctx: typer.Context) -> Workspace:
    found = ctx.find_object(Workspace)
    return found if found is not None else Workspace.resolve(None)


def _progress(batch: BatchSummary) -> str:
    return f"{batch.processed:,}/{batch.total:,}"


def batch_list(
    ctx: typer.Context,
    agency: Annotated[
        str | None, typer.Option("--agency", help="Only this agency's batches (any letter case).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: {batches, total}.")] = False,
) -> None:
    """The workspace's batches, newest first (command line and HTTP): status, progress and counts."""
    workspace = _workspace(ctx)
    batches: list[BatchSummary] = []
    if workspace.database_path.exists():
        try:
            with ledger_connection(workspace) as con:
                batches, _ = list_batches(con, agency=agency)
        except (DatabaseError, ServerError) as error:
            _fail(str(error))
    if as_json:
        print(json.dumps({"batches": [batch.to_json() for batch in batches], "total": len(batches)}, indent=2))
        return
    if not batches:
        out.print("no batches yet" + (f" for agency {agency!r}" if agency else ""))
        return
    # Borderless: the ids must stay whole in an 80-column terminal (or a pipe).
    table = Table(title="batches (newest first)", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("batch id", "agency", "status", "progress", "disclosed", "rejected", "unmatched"):
        numeric = column in ("progress", "disclosed", "rejected", "unmatched")
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=True,
            min_width=18 if column == "batch id" else len(column),
        )
    for batch in batches:
        table.add_row(
            batch.batch_id, batch.agency, batch.status, _progress(batch),
            f"{batch.counts['disclosed']:,}", f"{batch.counts['rejected']:,}", f"{batch.counts['unmatched']:,}",
        )  # fmt: skip
    out.print(table)


def _print_detail(detail: BatchDetail) -> None:
    batch = detail.summary
    out.print(f"[bold]batch {batch.batch_id}[/]  agency {batch.agency}  ({batch.source})")
    out.print(f"status {batch.status}, {_progress(batch)} records; recorded {batch.started} .. {batch.finished or '-'}")
    if detail.manifest is not None:
        out.print(f"as of {detail.manifest.get('as_of')}, input {detail.manifest.get('input', {}).get('file')}")
    outcomes = Table(title="by outcome")
    outcomes.add_column("outcome")
    outcomes.add_column("requests", justify="right")
    for key in ("disclosed", "rejected", "unmatched"):
        outcomes.add_row(key, f"{batch.counts[key]:,}")
    outcomes.add_row("total", f"{sum(batch.counts.values()):,}")
    out.print(outcomes)
    reasons = Table(title="by reason code (a rejected request may carry several)")
    reasons.add_column("reason code")
    reasons.add_column("requests", justify="right")
    reasons.add_column("meaning")
    for code, count in detail.reason_counts.items():
        meaning = REASON_TEXT[ReasonCode(code)] if code in ReasonCode.__members__ else ""
        reasons.add_row(code, f"{count:,}", meaning)
    out.print(reasons)


def batch_show(
    ctx: typer.Context,
    batch_id: Annotated[str, typer.Argument(help="The batch id (from `batch list` or a manifest).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the batch as one JSON object.")] = False,
) -> None:
    """One batch: its counts by outcome and by reason code, and its manifest if the workspace holds it."""
    workspace = _workspace(ctx)
    detail: BatchDetail | None = None
    if workspace.database_path.exists():
        try:
            with ledger_connection(workspace) as con:
                detail = batch_detail(con, batch_id, batches_dir=workspace.batches_dir)
        except (DatabaseError, ServerError) as error:
            _fail(str(error))
    if detail is None:
        _fail(f"no batch {batch_id!r} in this workspace (see `taxmatch batch list`)")
    if as_json:
        print(json.dumps(detail.to_json(), indent=2, ensure_ascii=False))
        return
    _print_detail(detail)
