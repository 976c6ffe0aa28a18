"""`taxmatch ledger ...`: export, verify, public-key, checkpoint, report; and `purge_command`.

`purge_command` is not part of `ledger_app`: the lead mounts it at the top level with
``app.command("purge", help=...)(purge_command)`` (`taxmatch purge --older-than DAYS`).

ASSUMPTION: the lead mounts this as ``app.add_typer(ledger_app, name="ledger")`` and the
root callback stores the resolved `taxmatch.settings.Workspace` in ``ctx.obj`` (found
with ``ctx.find_object(Workspace)``, so it may sit on any parent context). When there
is none (the sub-app run on its own) the workspace is ``Workspace.resolve(None)``:
``$TAXMATCH_HOME`` or ``./taxmatch-home``.

Exit codes: 0 intact / done; 1 the ledger is not intact (verify) or an operational error.
Nothing printed here contains personal data: only counts, hashes, line numbers and paths.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated

import typer

from taxmatch.api.running import ServerError, ledger_connection
from taxmatch.database import DatabaseError, connect, open_database
from taxmatch.ledger.audit import export, verify_database, verify_file
from taxmatch.ledger.export_report import ExportNotVerifiedError, report_from_export
from taxmatch.ledger.keys import export_public_key, has_signing_key, signing_key
from taxmatch.ledger.model import VerifyResult
from taxmatch.ledger.purge import purge_batches
from taxmatch.ledger.report import build_report, default_report_dir, write_report
from taxmatch.ledger.store import Ledger
from taxmatch.settings import Workspace

ledger_app = typer.Typer(help="The tamper-evident ledger of every outcome.", no_args_is_help=True)


def _workspace(ctx: typer.Context) -> Workspace:
    found = ctx.find_object(Workspace)
    return found if found is not None else Workspace.resolve(None)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _report(result: VerifyResult, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_json_dict(), sort_keys=True))
    elif result.ok:
        typer.echo(
            f"ledger intact: {result.entries} entries, head {result.head}, "
            f"{result.checkpoints} signed checkpoints (signed through entry {result.signed_through})"
        )
    else:
        where = f" (line {result.line})" if result.line is not None else ""
        typer.echo(f"LEDGER NOT INTACT: first bad entry {result.first_bad}{where}: {result.problem}", err=True)
    if not as_json:
        for warning in result.warnings:
            typer.echo(f"warning: {warning}", err=True)


@ledger_app.command("export")
def export_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="The JSONL file to write (mode 0600).")],
    no_checkpoint: Annotated[
        bool, typer.Option("--no-checkpoint", help="Do not sign the current head before exporting.")
    ] = False,
) -> None:
    """Write the whole ledger, one JSON entry a line, with hashes and signed checkpoints."""
    workspace = _workspace(ctx)
    try:
        # While `taxmatch serve` holds the database: a snapshot from the server (api/running.py).
        with ledger_connection(workspace, checkpoint=not no_checkpoint) as con:
            summary = export(con, out, public_key_pem=export_public_key(workspace))
    except (DatabaseError, ServerError, OSError) as error:
        raise _fail(str(error)) from None
    typer.echo(f"exported {summary.entries} entries and {summary.checkpoints} checkpoints to {summary.path}")
    typer.echo(f"head {summary.head}")


@ledger_app.command("verify")
def verify_command(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option("--file", help="Verify this export instead of the workspace database.")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="PEM file of the producer's public key (trust it, not the file's header)."),
    ] = None,
    expect_head: Annotated[
        str | None, typer.Option("--expect-head", help="An entry hash known from elsewhere (a batch manifest).")
    ] = None,
    allow_unsigned_tail: Annotated[
        bool,
        typer.Option(
            "--allow-unsigned-tail",
            help="Accept entries after the last signed checkpoint (by default the ledger must be signed to its end).",
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", hidden=True, help="Kept for old scripts: the default now (signed to the end).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Exit 0 if the ledger is intact; otherwise non-zero, naming the first bad entry.

    Intact means: hash-chained without a gap, not empty, an export with its header, and
    signed to its end by a valid checkpoint (unless --allow-unsigned-tail).
    """
    if strict and allow_unsigned_tail:
        raise _fail("--strict and --allow-unsigned-tail contradict each other (--strict is the default)")
    try:
        pem = public_key.read_bytes() if public_key is not None else None
    except OSError as error:
        raise _fail(f"cannot read the public key {public_key}: {error.strerror}") from None
    try:
        if file is not None:
            result = verify_file(file, pem, expect_head=expect_head, allow_unsigned_tail=allow_unsigned_tail)
        else:
            workspace = _workspace(ctx)
            if pem is None and has_signing_key(workspace):
                pem = export_public_key(workspace)
            with ledger_connection(workspace) as con:
                result = verify_database(con, pem, expect_head=expect_head, allow_unsigned_tail=allow_unsigned_tail)
    except (DatabaseError, ServerError, OSError, ValueError) as error:
        raise _fail(str(error)) from None
    _report(result, as_json)
    if not result.ok:
        raise typer.Exit(1)


@ledger_app.command("public-key")
def public_key_command(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the PEM to this file.")] = None,
) -> None:
    """Print the public key (PEM) that verifies this workspace's checkpoints."""
    try:
        pem = export_public_key(_workspace(ctx))
        if out is not None:
            out.write_bytes(pem)
    except (DatabaseError, OSError) as error:
        raise _fail(str(error)) from None
    typer.echo(pem.decode("ascii"), nl=False)


@ledger_app.command("checkpoint")
def checkpoint_command(ctx: typer.Context) -> None:
    """Sign the current head of the ledger and store the checkpoint."""
    workspace = _workspace(ctx)
    try:
        con = connect(workspace)
        try:
            ledger = Ledger(con)
            ledger.ensure_schema()
            checkpoint = ledger.checkpoint(signing_key(workspace))
        finally:
            con.close()
    except DatabaseError as error:
        raise _fail(str(error)) from None
    typer.echo(f"checkpoint: entry {checkpoint.seq}, head {checkpoint.head_hash}, key {checkpoint.key_id}")


def _parse_day(option: str, text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option} {text!r} is not a date YYYY-MM-DD") from None


@ledger_app.command("report")
def report_command(
    ctx: typer.Context,
    date_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC), inclusive.")],
    date_to: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD, UTC), inclusive.")],
    agency: Annotated[str | None, typer.Option("--agency", help="Only this agency (any letter case).")] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (default: workspace/reports/FROM_TO[_AGENCY]/)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Account from this ledger export (verified first) instead of the workspace."),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="With --file: PEM of the producer's public key, obtained independently."),
    ] = None,
) -> None:
    """The accounting of disclosures in a period: counts.csv, disclosures.csv (full TINs), report.html."""
    first = _parse_day("--from", date_from)
    last = _parse_day("--to", date_to)
    if last < first:
        raise _fail(f"--to {last} is before --from {first}")
    if file is not None and public_key is None:
        raise _fail("--file needs --public-key: an export is trusted only against a key obtained independently")
    if file is None and public_key is not None:
        raise _fail("--public-key goes with --file (the workspace's own ledger needs no key)")
    workspace = _workspace(ctx)
    try:
        if file is not None and public_key is not None:
            try:
                pem = public_key.read_bytes()
            except OSError as error:
                raise _fail(f"cannot read the public key {public_key}: {error.strerror}") from None
            accounting = report_from_export(file, pem, first, last, agency=agency)
            report = accounting.report
            typer.echo(
                f"export verified: {accounting.verification.entries} entries, "
                f"signed through entry {accounting.verification.signed_through}"
            )
            if accounting.unsigned_left_out:
                typer.echo(
                    f"warning: {accounting.unsigned_left_out} entries after the last signed checkpoint are not "
                    "accounted (no signature vouches for them)",
                    err=True,
                )
            # An auditor with an export has no workspace: by default the report goes under ./reports/.
            target = out if out is not None else default_report_dir(Path.cwd(), first, last, agency)
        else:
            with ledger_connection(workspace) as con:
                report = build_report(con, first, last, agency=agency)
            target = out if out is not None else default_report_dir(workspace.home, first, last, agency)
        files = write_report(report, target)
    except ExportNotVerifiedError as error:
        raise _fail(str(error)) from None
    except (DatabaseError, ServerError, OSError, ValueError) as error:
        raise _fail(str(error)) from None
    # Counts and paths only: the files hold the taxpayers (the CSV by full TIN, mode 0600).
    typer.echo(
        f"{report.entries} entries, {report.disclosure_count} disclosures about {len(report.taxpayers)} taxpayers "
        f"from {first} to {last} (ledger through entry {report.ledger_seq})"
    )
    typer.echo(f"report in {files.directory}: {files.counts_csv.name}, {files.disclosures_csv.name}, {files.html.name}")


def purge_command(
    ctx: typer.Context,
    older_than: Annotated[
        int, typer.Option("--older-than", min=0, help="Remove batch outputs written more than DAYS days ago.")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
) -> None:
    """Remove old batch outcome files (workspace/batches/ID/); each removal is recorded in the ledger."""
    workspace = _workspace(ctx)
    try:
        if dry_run:
            # Nothing is written, so the database (and its key) is not needed.
            result = purge_batches(None, workspace.batches_dir, older_than, dry_run=True)
        else:
            opened = open_database(workspace)
            if opened.notice is not None:
                typer.echo(opened.notice.message, err=True)
            try:
                ledger = Ledger(opened.connection)
                ledger.ensure_schema()
                result = purge_batches(ledger, workspace.batches_dir, older_than, signer=signing_key(workspace))
            finally:
                opened.connection.close()
    except (DatabaseError, OSError) as error:
        raise _fail(str(error)) from None
    verb = "would remove" if result.dry_run else "removed"
    # Batch ids, agencies, times and sizes only: the files' contents are never read or printed.
    for candidate in result.purged:
        typer.echo(
            f"{verb} {candidate.batch_id} ({candidate.agency or 'agency unknown'}): {len(candidate.files)} files, "
            f"{candidate.size_bytes:,} bytes, written {candidate.written_at:%Y-%m-%d %H:%M} UTC "
            f"(from the {candidate.age_source})"
        )
    summary = f"{verb} {len(result.purged)} batch directories older than {older_than} days; kept {result.kept}"
    if result.entries:
        summary += f"; ledger entries {result.entries[0].seq}-{result.entries[-1].seq} (PURGED)"
    typer.echo(summary)
