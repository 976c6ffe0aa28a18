"""The `taxmatch` command (DESIGN.md section 2): a thin Typer layer over the library.

Commands parse arguments, open the workspace, call one library function and print. Known
failures become one red line and exit code 2; personal data is never printed except the
answer of `lookup`, which is the point of that command.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import duckdb
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from taxmatch.api.cli import keys_app, serve
from taxmatch.api.running import ServerError, ServerUnreachable, running_server
from taxmatch.database import DatabaseError, open_database
from taxmatch.engine.duckdb_engine import DuckDBEngine, MasterNotLoadedError
from taxmatch.io.master import MasterFileError, MasterRowProblem
from taxmatch.io.requests import RequestFileError
from taxmatch.ledger import Ledger, signing_key
from taxmatch.ledger.cli import ledger_app, purge_command
from taxmatch.pipeline import Accounting, BatchResult, decide_requests, dumps_decision, ledger_events, run_batch
from taxmatch.records import REQUEST_COLUMNS, Address, RequestRecord
from taxmatch.settings import Policy, PolicyError, Workspace

app = typer.Typer(
    name="taxmatch",
    help="Answer agency requests for a taxpayer's current address from a master file of returns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
master_app = typer.Typer(help="The master file of returns.", no_args_is_help=True)
batch_app = typer.Typer(help="Request batches.", no_args_is_help=True)
app.add_typer(master_app, name="master")
app.add_typer(batch_app, name="batch")
app.add_typer(keys_app, name="keys", help="API keys: create, list, revoke.")
app.add_typer(ledger_app, name="ledger", help="The disclosure ledger: export, verify, public key, checkpoint.")
app.command(help="Serve the HTTP API (DESIGN.md section 3b).")(serve)
app.command("purge", help="Remove batch outputs older than DAYS days; each removal is recorded in the ledger.")(
    purge_command
)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
MAX_PROBLEMS_SHOWN = 10


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


@dataclass
class Session:
    workspace: Workspace
    policy: Policy
    connection: duckdb.DuckDBPyConnection
    engine: DuckDBEngine
    ledger: Ledger


@contextmanager
def open_session(ctx: typer.Context) -> Iterator[Session]:
    workspace: Workspace = ctx.obj
    try:
        workspace.ensure()
        policy = workspace.load_policy()
        opened = open_database(workspace)
    except (PolicyError, DatabaseError) as error:
        fail(str(error))
    if opened.notice is not None:
        err.print(f"[yellow]{opened.notice.message}[/]")
    try:
        ledger = Ledger(opened.connection)
        ledger.ensure_schema()
        yield Session(workspace, policy, opened.connection, DuckDBEngine(opened.connection), ledger)
    except (MasterNotLoadedError, RequestFileError, MasterFileError) as error:
        fail(str(error))
    finally:
        opened.connection.close()


def parse_as_of(text: str | None) -> datetime.date:
    if text is None:
        return datetime.date.today()
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of {text!r} is not a date YYYY-MM-DD")


@app.callback()
def main_callback(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Workspace directory (default: $TAXMATCH_HOME, else ./taxmatch-home)."),
    ] = None,
) -> None:
    ctx.obj = Workspace.resolve(home)


# ---- master ---------------------------------------------------------------------------------------


def load_master_with_progress(session: Session, files: list[Path]) -> None:
    problems: list[MasterRowProblem] = []
    missing = [path for path in files if not path.is_file()]
    if missing:
        fail(f"no such file: {', '.join(str(path) for path in missing)}")
    total_bytes = sum(path.stat().st_size for path in files)
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]loading master"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("load", total=total_bytes)
        rows, taxpayers = session.engine.load_master(files, problems.append, lambda read: progress.advance(task, read))
    loaded_seconds = time.perf_counter() - started
    with err.status("fitting the model (u from random master pairs)"):
        version = session.engine.fit_model()
    fit_seconds = time.perf_counter() - started - loaded_seconds
    rejects_path = session.workspace.home / "master-rejects.csv"
    with rejects_path.open("w", encoding="utf-8") as rejects:
        rejects.write("file,line,problem\n")
        for problem in problems:
            rejects.write(f"{problem.file},{problem.line},{problem.problem}\n")
    out.print(
        f"master loaded: [bold]{rows:,}[/] returns of [bold]{taxpayers:,}[/] taxpayers "
        f"from {len(files)} file(s) in {loaded_seconds:.1f}s; model {version} fitted in {fit_seconds:.1f}s"
    )
    out.print("The master was [bold]replaced[/] (a load never appends; load all files together to combine them).")
    if problems:
        err.print(f"[yellow]{len(problems):,} row(s) skipped[/]; all listed in {rejects_path}")
        for problem in problems[:MAX_PROBLEMS_SHOWN]:
            err.print(f"  {problem.file} line {problem.line}: {problem.problem}")


@master_app.command("load")
def master_load(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files of returns (DESIGN.md section 3).")],
) -> None:
    """Load (replace) the master file of returns and fit the model; the workspace is then ready to match."""
    with open_session(ctx) as session:
        load_master_with_progress(session, files)


# ---- batch ----------------------------------------------------------------------------------------


def run_batch_with_progress(
    session: Session, file: Path, agency: str, as_of: datetime.date, out_dir: Path | None
) -> BatchResult:
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as progress:  # fmt: skip
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=max(total, 1))
            progress.update(tasks[stage], completed=done, total=max(total, 1))

        return run_batch(
            session.engine,
            session.policy,
            session.ledger,
            signing_key(session.workspace),
            file,
            agency,
            as_of,
            out_dir,
            session.workspace.batches_dir,
            progress=report,
        )


def print_batch_summary(result: BatchResult) -> None:
    table = Table(title=f"batch {result.batch_id}")
    table.add_column("outcome")
    table.add_column("requests", justify="right")
    for key in ("disclosed", "rejected", "unmatched", "total"):
        table.add_row(key, f"{result.counts.get(key, 0):,}")
    out.print(table)
    rate = result.counts["total"] / result.seconds if result.seconds else 0.0
    out.print(f"{result.seconds:.1f}s ({rate:,.0f} requests/s); outputs in [bold]{result.out_dir}[/]")


@batch_app.command("run")
def batch_run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Requests: .csv, .ndjson or .parquet.")],
    agency: Annotated[str, typer.Option("--agency", help="The requesting agency.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the requests are judged on (YYYY-MM-DD).")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: workspace/batches/ID).")
    ] = None,
) -> None:
    """Run a batch: disclosed.csv, rejected.csv, unmatched.csv and manifest.json."""
    as_of_date = parse_as_of(as_of)
    if not agency.strip():
        fail("--agency must name the requesting agency")
    with open_session(ctx) as session:
        result = run_batch_with_progress(session, file, agency.strip(), as_of_date, out_dir)
    print_batch_summary(result)


# ---- lookup ---------------------------------------------------------------------------------------


def request_from_mapping(mapping: dict[str, Any]) -> RequestRecord:
    values: dict[str, Any] = {}
    for column in REQUEST_COLUMNS:
        value = mapping.get(column)
        values[column] = None if value is None or str(value).strip() == "" else str(value).strip()
    prior = tuple(
        Address(
            *(
                None if not entry.get(key) else str(entry[key]).strip()
                for key in ("street", "unit", "city", "state", "zip")
            )
        )
        for entry in mapping.get("prior_addresses") or []
        if isinstance(entry, dict)
    )
    values["request_id"] = values["request_id"] or "lookup"
    return RequestRecord(**values, prior_addresses=prior, source_line=1)


@app.command()
def lookup(
    ctx: typer.Context,
    json_file: Annotated[
        str | None, typer.Option("--json", help="A JSON request object from FILE, or - for stdin.")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the request is judged on (YYYY-MM-DD).")] = None,
    agency: Annotated[str, typer.Option("--agency", help="The requesting agency, for the ledger.")] = "cli",
    request_id: Annotated[str | None, typer.Option("--request-id")] = None,
    first_name: Annotated[str | None, typer.Option("--first-name")] = None,
    middle_name: Annotated[str | None, typer.Option("--middle-name")] = None,
    last_name: Annotated[str | None, typer.Option("--last-name")] = None,
    suffix: Annotated[str | None, typer.Option("--suffix")] = None,
    dob: Annotated[str | None, typer.Option("--dob")] = None,
    tin: Annotated[str | None, typer.Option("--tin")] = None,
    street: Annotated[str | None, typer.Option("--street")] = None,
    unit: Annotated[str | None, typer.Option("--unit")] = None,
    city: Annotated[str | None, typer.Option("--city")] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    zip_code: Annotated[str | None, typer.Option("--zip")] = None,
    a_number: Annotated[str | None, typer.Option("--a-number")] = None,
    removal_order_date: Annotated[str | None, typer.Option("--removal-order-date")] = None,
    statute: Annotated[str | None, typer.Option("--statute")] = None,
    tax_years: Annotated[str | None, typer.Option("--tax-years")] = None,
) -> None:
    """One request, decided exactly as in a batch; prints {request_id, outcome, reason_codes, disclosure}."""
    mapping: dict[str, Any]
    if json_file is not None:
        try:
            text = sys.stdin.read() if json_file == "-" else Path(json_file).read_text(encoding="utf-8")
            mapping = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            fail(f"--json {json_file}: {error}")
        if not isinstance(mapping, dict):
            fail(f"--json {json_file}: expected one JSON object")
    else:
        mapping = {}
    flags = {
        "request_id": request_id, "first_name": first_name, "middle_name": middle_name, "last_name": last_name,
        "suffix": suffix, "dob": dob, "tin": tin, "street": street, "unit": unit, "city": city, "state": state,
        "zip": zip_code, "a_number": a_number, "removal_order_date": removal_order_date, "statute": statute,
        "tax_years": tax_years,
    }  # fmt: skip
    mapping.update({key: value for key, value in flags.items() if value is not None})
    request = request_from_mapping(mapping)
    as_of_date = parse_as_of(as_of)
    server = running_server(ctx.obj)
    if server is not None:  # `taxmatch serve` holds the database: the server decides and accounts
        try:
            answer = server.lookup(mapping, as_of_date.isoformat(), agency)
        except ServerUnreachable:
            answer = None  # a stale server.json: decide here (opening the database says if it is in use)
        except ServerError as error:
            fail(str(error))
        if answer is not None:
            out.print_json(json.dumps(answer, indent=2, ensure_ascii=False))
            return
    with open_session(ctx) as session:
        (decision,) = decide_requests(session.engine, session.policy, as_of_date, [request])
        model_version, _ = session.engine.current_model()
        accounting = Accounting(agency, "lookup", "cli", model_version)
        with session.ledger.transaction():
            session.ledger.append(ledger_events([request], [decision], accounting, session.policy))
        session.ledger.checkpoint(signing_key(session.workspace))
    out.print_json(dumps_decision(decision, session.policy.extra_disclosed_columns))


# ---- synth and demo -------------------------------------------------------------------------------


@app.command()
def synth(
    people: Annotated[int, typer.Option("--people", min=10, help="Persons in the population.")],
    requests: Annotated[int, typer.Option("--requests", min=1, help="Requests to draw.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")],
    seed: Annotated[int, typer.Option("--seed")] = 7,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the requests are drawn for.")] = None,
) -> None:
    """Synthetic master + requests + truth (master.csv, requests.csv, truth.csv, meta.json)."""
    from taxmatch.synth import generate

    started = time.perf_counter()
    summary = generate(out_dir, people=people, requests=requests, seed=seed, as_of=parse_as_of(as_of))
    out.print(f"synthetic data in [bold]{out_dir}[/] ({time.perf_counter() - started:.1f}s): {summary}")


DEMO_PEOPLE = 2_000
DEMO_REQUESTS = 1_000


@app.command()
def demo(ctx: typer.Context) -> None:
    """Synthetic data end to end: generate, load, run a batch, score the outcomes against the truth."""
    from taxmatch.evaluation import evaluate_batch
    from taxmatch.synth import generate

    with open_session(ctx) as session:
        data_dir = session.workspace.home / "demo-data"
        as_of = datetime.date.today()
        out.print(f"[bold]1.[/] synthetic population: {DEMO_PEOPLE:,} people, {DEMO_REQUESTS:,} requests -> {data_dir}")
        generate(data_dir, people=DEMO_PEOPLE, requests=DEMO_REQUESTS, seed=7, as_of=as_of)
        out.print("[bold]2.[/] master load")
        load_master_with_progress(session, [data_dir / "master.csv"])
        out.print("[bold]3.[/] batch run")
        result = run_batch_with_progress(session, data_dir / "requests.csv", "DEMO", as_of, None)
        print_batch_summary(result)
        report = evaluate_batch(data_dir / "truth.csv", result.out_dir)
        out.print(
            f"[bold]4.[/] against the truth: {report.correct_disclosures:,} right disclosures, "
            f"[bold]{report.wrong_disclosures}[/] wrong, recall {report.recall:.1%} of findable requests, "
            f"{report.invalid_caught:,}/{report.invalid_total:,} invalid requests rejected"
        )
        out.print(f"Files: {result.out_dir}/{{disclosed,rejected,unmatched}}.csv and manifest.json")


def main() -> None:
    app()
