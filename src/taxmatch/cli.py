"""The `taxmatch` command (DESIGN.md section 2): a thin Typer layer over the library.

Commands parse arguments, open the workspace, call one library function and print. Known
failures become one red line and exit code 2; personal data is never printed except the
answer of `lookup`, which is the point of that command.
"""

from __future__ import annotations

import csv
import datetime
import enum
import json
import os
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

from taxmatch import __version__
from taxmatch.api.cli import keys_app, serve
from taxmatch.api.running import ServerError, ServerUnreachable, running_server
from taxmatch.batch_commands import batch_list, batch_show
from taxmatch.database import DatabaseError, open_database
from taxmatch.engine.interface import (
    EngineOptions,
    EngineUnavailableError,
    MasterNotLoadedError,
    MatchingEngine,
    open_engine,
)
from taxmatch.io.master import MAX_REJECTED_SHARE, MasterFileError, MasterRowProblem
from taxmatch.io.outcome_formats import OUTPUT_FORMATS, OutputFormat
from taxmatch.io.requests import Item, RequestFileError, new_lookup_request_id, read_requests_from_text
from taxmatch.ledger import Ledger, signing_key
from taxmatch.ledger.batch_runs import BatchRuns, purge_stale_staging
from taxmatch.ledger.batches import LOOKUP_BATCH_ID
from taxmatch.ledger.cli import ledger_app, purge_command
from taxmatch.ledger.model import command_line_actor
from taxmatch.pipeline import (
    Accounting,
    BatchAlreadyCompletedError,
    BatchIncompleteError,
    BatchOutputError,
    BatchResult,
    decide_and_explain,
    decide_requests,
    decision_as_json,
    ledger_events,
    run_batch,
    valid_requests,
)
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
model_app = typer.Typer(help="The matching model: m learned from requests.", no_args_is_help=True)
app.add_typer(master_app, name="master")
app.add_typer(model_app, name="model")
app.add_typer(batch_app, name="batch")
batch_app.command("list")(batch_list)
batch_app.command("show")(batch_show)
app.add_typer(keys_app, name="keys", help="API keys: create, list, revoke.")
app.add_typer(ledger_app, name="ledger", help="The disclosure ledger: export, verify, public key, checkpoint.")
app.command(help="Serve the HTTP API and the web dashboard (docs at /docs, dashboard at /ui).")(serve)
app.command("purge", help="Remove batch outputs older than DAYS days; each removal is recorded in the ledger.")(
    purge_command
)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
MAX_PROBLEMS_SHOWN = 10


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


class EngineChoice(enum.StrEnum):
    """`--engine`: the engines of `engine.interface.ENGINE_NAMES` (a test holds the two equal)."""

    duckdb = "duckdb"
    spark = "spark"


# Where the global engine options wait in the context (`ctx.meta` is shared by every subcommand).
ENGINE_OPTIONS = "taxmatch.engine_options"


@dataclass
class Session:
    workspace: Workspace
    policy: Policy
    connection: duckdb.DuckDBPyConnection
    engine: MatchingEngine
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
        engine = open_engine(opened.connection, ctx.meta.get(ENGINE_OPTIONS, EngineOptions()), workspace.home)
        yield Session(workspace, policy, opened.connection, engine, ledger)
    except (MasterNotLoadedError, RequestFileError, MasterFileError, EngineUnavailableError) as error:
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


def print_version(value: bool) -> None:
    if value:
        print(f"taxmatch {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Workspace directory (default: $TAXMATCH_HOME, else ./taxmatch-home)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=print_version, help="Print the version and exit.")
    ] = False,
    engine: Annotated[
        EngineChoice,
        typer.Option(
            "--engine",
            envvar="TAXMATCH_ENGINE",
            case_sensitive=False,
            help="Where load and batch run: duckdb (one process) or spark (needs the \\[spark] extra and Java 17).",
        ),
    ] = EngineChoice.duckdb,
    spark_master: Annotated[
        str,
        typer.Option("--spark-master", envvar="TAXMATCH_SPARK_MASTER", help="Spark master URL for --engine spark."),
    ] = "local[*]",
    warehouse: Annotated[
        str | None,
        typer.Option(
            "--warehouse", help="Where --engine spark keeps master and model as Parquet (default: HOME/warehouse)."
        ),
    ] = None,
) -> None:
    ctx.obj = Workspace.resolve(home)
    ctx.meta[ENGINE_OPTIONS] = EngineOptions.from_environment(engine.value, spark_master, warehouse)


# ---- master ---------------------------------------------------------------------------------------


def write_master_rejects(path: Path, problems: list[MasterRowProblem]) -> None:
    with path.open("w", encoding="utf-8", newline="") as rejects:
        writer = csv.writer(rejects, lineterminator="\n")
        writer.writerow(("file", "line", "problem"))
        writer.writerows((problem.file, problem.line, problem.problem) for problem in problems)


def load_master_with_progress(
    session: Session, files: list[Path], max_rejected_share: float = MAX_REJECTED_SHARE
) -> None:
    problems: list[MasterRowProblem] = []
    missing = [path for path in files if not path.is_file()]
    if missing:
        fail(f"no such file: {', '.join(str(path) for path in missing)}")
    runs = BatchRuns(session.ledger)
    runs.ensure_schema()
    removed = purge_stale_staging(runs, session.workspace.batches_dir)  # personal data, nothing final
    if removed:
        err.print(f"removed {len(removed)} staging folder(s) left by interrupted batch runs")
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
        try:
            rows, taxpayers = session.engine.load_master(
                files, problems.append, lambda read: progress.advance(task, read), max_rejected_share
            )
        except MasterFileError:
            # A refused load names its rejected rows too, so the file can be mended.
            write_master_rejects(session.workspace.home / "master-rejects.csv", problems)
            raise
    loaded_seconds = time.perf_counter() - started
    with err.status("fitting the model (u from random master pairs)"):
        version = session.engine.fit_model()
    fit_seconds = time.perf_counter() - started - loaded_seconds
    rejects_path = session.workspace.home / "master-rejects.csv"
    write_master_rejects(rejects_path, problems)
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
    files: Annotated[
        list[Path],
        typer.Argument(help="CSV or Parquet files of returns (tin, tax_year, role, names, dob, address, phone)."),
    ],
    max_rejected_share: Annotated[
        float,
        typer.Option(
            "--max-rejected-share",
            min=0.0,
            max=1.0,
            help="Refuse the load (and keep the old master) when more than this share of rows is rejected.",
        ),
    ] = MAX_REJECTED_SHARE,
) -> None:
    """Load (replace) the master file of returns and fit the model; the workspace is then ready to match."""
    with open_session(ctx) as session:
        load_master_with_progress(session, files, max_rejected_share)


@model_app.command("train")
def model_train(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Requests (CSV, NDJSON or Parquet) whose pairs m is learned from.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date the requests are validated on (YYYY-MM-DD; default today).")
    ] = None,
) -> None:
    """Learn m (how requests differ from the returns of the same person) from a file of requests, by
    EM over their blocked pairs; later batches and lookups use the new model version. Nothing is
    disclosed or recorded; `master load` returns to the priors."""
    day = parse_as_of(as_of)
    if not file.is_file():
        fail(f"{file}: no such file")
    with open_session(ctx) as session:
        requests = valid_requests(file, session.policy, day)
        if not requests:
            fail(f"{file}: no valid request to learn from")
        version, report = session.engine.train_m(requests)
    out.print(f"EM over the blocked pairs of {report.requests:,} valid requests:")
    for run in report.sessions:
        used = "used" if run.used else "not used (too few pairs, or no convergence): priors kept"
        out.print(
            f"  {run.key}: {run.pairs:,} pairs, estimates {', '.join(run.estimated)}; match share "
            f"{run.match_share:.3f}, {run.iterations} iterations, the two halves differ by up to "
            f"{run.halves_differ_by:.3f}; {used}"
        )
    levels = Table(title="m: prior -> learned")
    for column in ("comparison", "level", "prior", "learned"):
        levels.add_column(column)
    for name, changes in report.changes.items():
        for label, (prior, learned) in changes.items():
            levels.add_row(name, label, f"{prior:.4f}", f"{learned:.4f}")
    out.print(levels)
    out.print(f"model version: {version}")


# ---- batch ----------------------------------------------------------------------------------------


def run_batch_with_progress(
    session: Session,
    file: Path,
    agency: str,
    as_of: datetime.date,
    out_dir: Path | None,
    rerun: bool = False,
    output_format: OutputFormat = "csv",
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
            rerun=rerun,
            output_format=output_format,
        )


def print_batch_summary(result: BatchResult) -> None:
    table = Table(title=f"batch {result.batch_id}")
    table.add_column("outcome")
    table.add_column("requests", justify="right")
    for key in ("disclosed", "rejected", "unmatched", "total"):
        table.add_row(key, f"{result.counts.get(key, 0):,}")
    out.print(table)
    if result.repeats is not None:
        out.print(f"a re-run: recorded as a new batch that repeats batch {result.repeats}")
    if result.removed_staging:
        err.print(f"removed {result.removed_staging} staging folder(s) left by interrupted batch runs")
    if result.finished_interrupted:
        out.print("an interrupted run had recorded this batch in the ledger: its files are now in place, nothing new")
    rate = result.counts["total"] / result.seconds if result.seconds else 0.0
    out.print(f"{result.seconds:.1f}s ({rate:,.0f} requests/s); outputs in [bold]{result.out_dir}[/]")


def os_error_text(error: OSError) -> str:
    """One line for a failed file operation: the path and the system's reason, no traceback."""
    where = f" {error.filename}" if error.filename else ""
    return f"cannot use{where}: {error.strerror or type(error).__name__}"


def check_batch_paths(file: Path, out_dir: Path | None) -> None:
    """Refuse, before any work, an input that is not a readable file or an --out that cannot be a directory."""
    if not file.exists():
        fail(f"no such file: {file}")
    if not file.is_file():
        fail(f"{file} is not a file (a batch is one .csv, .ndjson or .parquet file)")
    if out_dir is None:
        return
    if out_dir.exists() and not out_dir.is_dir():
        fail(f"--out {out_dir} is an existing file, not a directory")
    existing = next((parent for parent in (out_dir, *out_dir.parents) if parent.exists()), None)
    if existing is None or not existing.is_dir():
        fail(f"--out {out_dir}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        fail(f"--out {out_dir}: {existing} is not writable")


def batch_run_by_server(
    workspace: Workspace,
    file: Path,
    agency: str,
    as_of: datetime.date,
    out_dir: Path | None,
    rerun: bool,
    output_format: str,
) -> BatchResult | None:
    """The batch run by `taxmatch serve`, which holds the database, if it runs (api/running.py); else None."""
    server = running_server(workspace)
    if server is None:
        return None
    from taxmatch.api.operator import batch_result_from_json  # FastAPI: only when a server runs

    order = {
        "file": str(file.resolve()), "agency": agency, "as_of": as_of.isoformat(),
        "out_dir": None if out_dir is None else str(out_dir.resolve()), "rerun": rerun, "output_format": output_format,
    }  # fmt: skip
    try:
        with err.status(f"running the batch in the server at {server.url}"):
            return batch_result_from_json(server.batch_run(order))
    except ServerUnreachable:
        return None  # a stale server.json: run here (opening the database says if it is in use)
    except ServerError as error:
        fail(str(error))


@batch_app.command("run")
def batch_run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Requests: .csv, .ndjson or .parquet.")],
    agency: Annotated[str, typer.Option("--agency", help="The requesting agency.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the requests are judged on (YYYY-MM-DD).")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory (default: workspace/batches/ID).")
    ] = None,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Run a batch that already ran again, as a new batch naming it.")
    ] = False,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", help="Outcome files as csv (the default, the contract), ndjson or parquet (same columns)."
        ),
    ] = "csv",
) -> None:
    """Run a batch: disclosed.csv, rejected.csv, unmatched.csv and manifest.json."""
    as_of_date = parse_as_of(as_of)
    if not agency.strip():
        fail("--agency must name the requesting agency")
    if output_format not in OUTPUT_FORMATS:
        fail(f"--format {output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    check_batch_paths(file, out_dir)
    result = batch_run_by_server(ctx.obj, file, agency.strip(), as_of_date, out_dir, rerun, output_format)
    if result is not None:
        print_batch_summary(result)
        return
    with open_session(ctx) as session:
        try:
            result = run_batch_with_progress(session, file, agency.strip(), as_of_date, out_dir, rerun, output_format)
        except (BatchAlreadyCompletedError, BatchIncompleteError, BatchOutputError) as error:
            fail(str(error))
        except OSError as error:  # e.g. /proc or a full disk: what the checks above cannot foresee
            fail(os_error_text(error))
    print_batch_summary(result)


# ---- lookup ---------------------------------------------------------------------------------------


def lookup_item(mapping: dict[str, Any]) -> Item:
    """The request of ``mapping``, read exactly as `POST /v1/lookup` reads its body.

    The API's own schema (`LookupRequest`: unknown fields refused, where the API answers 422)
    and then the NDJSON reader, as a batch line would be: one definition for CLI and API.
    """
    from pydantic import ValidationError

    from taxmatch.api.schemas import LookupRequest

    try:
        parsed = LookupRequest.model_validate(mapping)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in item['loc']) or 'request'}: {item['msg']}"
            for item in error.errors(include_input=False)  # the message never echoes a value
        ]
        fail(f"the request is not valid: {'; '.join(problems)}")
    values = parsed.model_dump(exclude_none=True)
    values.setdefault("request_id", new_lookup_request_id())
    (item,) = read_requests_from_text(json.dumps(values, ensure_ascii=False), "ndjson")
    return item


@app.command()
def lookup(
    ctx: typer.Context,
    agency: Annotated[str, typer.Option("--agency", help="The requesting agency, recorded in the ledger (required).")],
    json_file: Annotated[
        str | None, typer.Option("--json", help="A JSON request object from FILE, or - for stdin.")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the request is judged on (YYYY-MM-DD).")] = None,
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
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Add the explanation: candidates, comparison levels and weights, the deciding rule."
        ),
    ] = False,
) -> None:
    """One request, decided exactly as in a batch; prints {request_id, outcome, reason_codes, disclosure}."""
    if not agency.strip():
        fail("--agency must name the requesting agency")
    mapping: dict[str, Any]
    if json_file is not None:
        try:
            text = sys.stdin.read() if json_file == "-" else Path(json_file).read_text(encoding="utf-8")
            mapping = json.loads(text)
        except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as error:
            fail(f"--json {json_file}: {error}")
        if not isinstance(mapping, dict):
            fail(f"--json {json_file}: expected one JSON object")
    else:
        mapping = {}
    fields = {
        "first_name": first_name, "middle_name": middle_name, "last_name": last_name, "suffix": suffix, "dob": dob,
        "tin": tin, "street": street, "unit": unit, "city": city, "state": state, "zip": zip_code,
        "a_number": a_number, "removal_order_date": removal_order_date, "statute": statute, "tax_years": tax_years,
    }  # fmt: skip
    given = {key: value for key, value in fields.items() if value is not None}
    if json_file is None and not given:
        # No request at all is a usage error, not a request to account for: nothing reaches the ledger.
        fail("no request given: pass --json FILE (or - for stdin) or the request's fields (--first-name, "
             "--last-name, --street, ...); see taxmatch lookup --help")  # fmt: skip
    mapping.update(given)
    if request_id is not None:
        mapping["request_id"] = request_id
    # Accounted as the API accounts its lookups: an id of its own (unless given) and who asked.
    mapping.setdefault("request_id", new_lookup_request_id())
    actor = command_line_actor()
    item = lookup_item(mapping)
    as_of_date = parse_as_of(as_of)
    server = running_server(ctx.obj)
    if server is not None:  # `taxmatch serve` holds the database: the server decides and accounts
        try:
            answer = server.lookup(mapping, as_of_date.isoformat(), agency, actor, explain=explain)
        except ServerUnreachable:
            answer = None  # a stale server.json: decide here (opening the database says if it is in use)
        except ServerError as error:
            fail(str(error))
        if answer is not None:
            out.print_json(json.dumps(answer, indent=2, ensure_ascii=False))
            return
    with open_session(ctx) as session:
        if explain:
            (decision,), (explanation,) = decide_and_explain(session.engine, session.policy, as_of_date, [item])
        else:
            (decision,) = decide_requests(session.engine, session.policy, as_of_date, [item])
        model_version, _ = session.engine.current_model()
        accounting = Accounting(agency.strip(), LOOKUP_BATCH_ID, actor, model_version)
        with session.ledger.transaction():  # the entry and its signature commit together: signed to the end
            session.ledger.append(ledger_events([item], [decision], accounting, session.policy))
            session.ledger.checkpoint(signing_key(session.workspace))
    answer = decision_as_json(decision, session.policy.extra_disclosed_columns)
    if explain:
        answer["explanation"] = explanation
    out.print_json(json.dumps(answer, indent=2, ensure_ascii=False))


# ---- synth and demo -------------------------------------------------------------------------------


@app.command()
def synth(
    people: Annotated[int, typer.Option("--people", min=10, help="Persons in the population.")],
    requests: Annotated[int, typer.Option("--requests", min=1, help="Requests to draw.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory.")],
    seed: Annotated[int, typer.Option("--seed")] = 7,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Date the requests are drawn for.")] = None,
    noise: Annotated[
        str,
        # The names are checked by generate (synth.keyed.NOISE_MODELS): importing the package here
        # would slow every command's start.
        typer.Option("--noise", help="How requests are written: household or keyed (typing, OCR, phonetic errors)."),
    ] = "household",
) -> None:
    """Synthetic master + requests + truth (master.csv, requests.csv, truth.csv, meta.json)."""
    from taxmatch.synth import NOISE_MODELS, generate

    if noise not in NOISE_MODELS:
        raise typer.BadParameter(f"{noise!r} is not one of {', '.join(NOISE_MODELS)}", param_hint="--noise")
    started = time.perf_counter()
    summary = generate(out_dir, people=people, requests=requests, seed=seed, as_of=parse_as_of(as_of), noise=noise)
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
        # Each demo is a new batch: the same data as the last demo's makes it a re-run of that one.
        result = run_batch_with_progress(session, data_dir / "requests.csv", "DEMO", as_of, None, rerun=True)
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
