"""The pipeline: batch ledger columns are the events lookups record, one by one; chunking changes no decision."""

from __future__ import annotations

import csv
import datetime
import gc
import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from taxmatch import pipeline
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.interface import request_input_table
from taxmatch.io.requests import read_requests
from taxmatch.pipeline import Accounting, ledger_columns, ledger_events
from taxmatch.records import Decision, Disclosure, MalformedRecord, Outcome, ReasonCode, RequestRecord
from taxmatch.settings import Policy
from taxmatch.synth import generate


def disclosure(tin: str) -> Disclosure:
    return Disclosure(
        tin_last4=tin[-4:], first_name="ANA", middle_name="", last_name="DIAZ", suffix="", street="1 MAIN ST",
        unit="", city="AUSTIN", state="TX", zip="78701", tax_year=2023, match_probability=0.9999,
        evidence="name=exact", tin=tin, phone="5125550100",
    )  # fmt: skip


@pytest.mark.parametrize(
    "policy",
    [Policy.default(), Policy.from_mapping({"disclose_phone": True, "disclose_full_tin": True}, version="generous")],
)
def test_ledger_columns_are_the_ledger_events(policy: Policy) -> None:
    items = [
        RequestRecord("r1", statute="8 U.S.C. 1326"),
        RequestRecord("r2", statute=None),
        MalformedRecord("r3", 4, "bad quoting"),
        RequestRecord("r4", statute="8 USC 1325"),
        RequestRecord("r5", statute="8 U.S.C. 1326"),
        RequestRecord("r1", statute="8 U.S.C. 1326"),
    ]
    decisions = [
        Decision("r1", Outcome.DISCLOSED, disclosure=disclosure("123456789")),
        Decision("r2", Outcome.REJECTED, (ReasonCode.MISSING_STATUTE, ReasonCode.INVALID_ZIP)),
        Decision("r3", Outcome.REJECTED, (ReasonCode.MALFORMED_RECORD,), detail="bad quoting"),
        Decision("r4", Outcome.NOT_MATCHED, (ReasonCode.AMBIGUOUS,)),
        # Not produced by decide_requests, but accounted the same way by both paths: nothing was disclosed.
        Decision("r5", Outcome.DISCLOSED),
        Decision("r1", Outcome.REJECTED, (ReasonCode.DUPLICATE_REQUEST_ID,)),
    ]
    accounting = Accounting("ICE", "b-1", "api:k1", "model-1")
    columns = ledger_columns(items, decisions, accounting, policy)
    events = ledger_events(items, decisions, accounting, policy)
    assert columns.events() == events
    assert [event.taxpayer_tin for event in events] == ["123456789", "", "", "", "", ""]
    assert events[0].fields_disclosed[0] == ("tin" if policy.disclose_full_tin else "tin_last4")
    assert [event.statute for event in events] == [
        "8 U.S.C. 1326",
        "",
        "",
        "8 USC 1325",
        "8 U.S.C. 1326",
        "8 U.S.C. 1326",
    ]


def test_chunked_and_single_chunk_paths_decide_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch of more than one chunk is validated and scored on two threads; one chunk (a lookup)
    # on the calling thread. Same decisions, repeated ids across chunk borders included.
    data = tmp_path / "data"
    generate(data, people=300, requests=120, seed=3, as_of=datetime.date(2026, 11, 25))
    engine = DuckDBEngine(duckdb.connect())
    engine.load_master([data / "master.csv"], lambda problem: None)
    engine.fit_model()
    items = list(read_requests(data / "requests.csv"))
    items += items[5:9]  # repeated request ids, in later chunks than their first
    policy, as_of = Policy.default(), datetime.date(2026, 11, 25)
    whole = pipeline.decide_requests(engine, policy, as_of, items)
    one_by_one = [pipeline.decide_requests(engine, policy, as_of, [item])[0] for item in items[:40]]
    monkeypatch.setattr(pipeline, "MIN_ITEMS_TO_SPLIT", 10)
    in_two_processes = pipeline.decide_requests(engine, policy, as_of, items, processes=2)
    monkeypatch.setattr(pipeline, "SCORING_CHUNK_ITEMS", 7)
    chunked = pipeline.decide_requests(engine, policy, as_of, items)
    assert chunked == whole
    assert in_two_processes == whole
    assert one_by_one == whole[:40]
    assert {decision.outcome for decision in whole} == set(Outcome)
    assert sum(ReasonCode.DUPLICATE_REQUEST_ID in decision.reason_codes for decision in whole) >= 4


def test_the_cycle_collector_is_paused_for_a_batch_and_restored_after() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), pipeline._cyclic_collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed batch")
    assert gc.isenabled(), "back on after a failure too"
    gc.disable()
    try:
        with pipeline._cyclic_collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "a caller that had it off keeps it off"
    finally:
        gc.enable()


def test_validation_halves_build_the_scoring_input_of_what_they_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(tmp_path, people=200, requests=150, seed=4, as_of=datetime.date(2026, 11, 25))
    items = list(read_requests(tmp_path / "requests.csv"))
    items += items[10:14]  # valid requests whose repeated ids are rejected: their rows must go
    monkeypatch.setattr(pipeline, "MIN_ITEMS_TO_SPLIT", 10)
    policy, as_of = Policy.default(), datetime.date(2026, 11, 25)
    decisions: list[Decision | None] = [None] * len(items)
    to_score, inputs = pipeline._validate_chunk(items, 0, len(items), policy, as_of, set(), decisions, processes=2)
    assert inputs is not None
    assert inputs.equals(request_input_table(to_score))
    assert 0 < len(to_score) < len(items) - 4


def test_objects_made_while_paused_are_left_old_and_still_collectable() -> None:
    class Node:
        pass

    with pipeline._cyclic_collector_paused():
        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        young_before_leaving = gc.get_count()[0]
    assert young_before_leaving > 0
    assert gc.get_count()[0] < young_before_leaving, "promoted, not left for the next young collection"
    assert gc.get_freeze_count() == 0, "nothing left frozen out of collection"
    del cycle
    assert gc.collect() >= 1, "the cycle is still collected"


# ---- atomic outcomes and idempotent batches (issue 13, findings 4 and 5) --------------------------

# `taxmatch ARGS...` in a process that kills itself (SIGKILL: no clean-up, no rollback) at POINT:
# - "commit": the batch's ledger transaction is complete but not committed;
# - "after-commit": the first thing after the commit (the checkpoint that signs it).
DIE_AT = """
import os, signal, sys
from contextlib import contextmanager
from taxmatch.ledger.store import Ledger

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

point = sys.argv[1]
if point == "commit":
    real_transaction = Ledger.transaction

    @contextmanager
    def dying_transaction(self):
        with real_transaction(self) as ledger:
            yield ledger
            die()

    Ledger.transaction = dying_transaction
elif point == "after-commit":
    Ledger.checkpoint = die
from taxmatch.cli import app
app(sys.argv[2:], prog_name="taxmatch")
"""
AS_OF = "2026-11-25"
OUTCOME_FILES = ("disclosed.csv", "rejected.csv", "unmatched.csv")


@pytest.fixture(scope="module")
def loaded_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from typer.testing import CliRunner

    from taxmatch.cli import app

    root = tmp_path_factory.mktemp("atomic")
    generate(root / "data", people=300, requests=150, seed=5, as_of=datetime.date(2026, 11, 25))
    loaded = CliRunner().invoke(
        app, ["--home", str(root / "home"), "master", "load", str(root / "data" / "master.csv")]
    )
    assert loaded.exit_code == 0, loaded.output
    return root / "home", root / "data" / "requests.csv"


def taxmatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DIE_AT, "none", *args], capture_output=True, text=True, timeout=300, check=False
    )


def ledger_rows(home: Path, agency: str) -> list[tuple[str, str, str]]:
    """(batch_id, request_id, outcome) of every entry of `agency`."""
    from taxmatch.database import open_database
    from taxmatch.settings import Workspace

    connection = open_database(Workspace(home), read_only=True).connection
    try:
        rows = connection.execute(
            "SELECT batch_id, request_id, outcome FROM ledger_entries WHERE agency = ? ORDER BY seq", [agency]
        ).fetchall()
    finally:
        connection.close()
    return [(str(batch), str(request), str(outcome)) for batch, request, outcome in rows]


def written_outcomes(out: Path) -> Counter[tuple[str, str]]:
    """(request_id, outcome) of every row of the outcome files that are in place in `out`."""
    outcomes = {"disclosed.csv": "DISCLOSED", "rejected.csv": "REJECTED", "unmatched.csv": "NOT_MATCHED"}
    written: Counter[tuple[str, str]] = Counter()
    for name in OUTCOME_FILES:
        if (out / name).is_file():
            with (out / name).open(encoding="utf-8", newline="") as handle:
                written.update((row["request_id"], outcomes[name]) for row in csv.DictReader(handle))
    return written


@pytest.mark.slow
@pytest.mark.parametrize("point", ["commit", "after-commit", "after-commit, staging lost"])
def test_a_batch_killed_at_its_commit_leaves_nothing_unaccounted_and_a_rerun_finishes_it(
    loaded_workspace: tuple[Path, Path], tmp_path: Path, point: str
) -> None:
    home, requests = loaded_workspace
    agency = "KILLED-" + point.replace(",", "").replace(" ", "-")  # a batch id of this test's own
    out = tmp_path / "out"
    run = ["--home", str(home), "batch", "run", str(requests), "--agency", agency, "--as-of", AS_OF, "--out", str(out)]
    killed = subprocess.run(
        [sys.executable, "-c", DIE_AT, point.split(",")[0], *run], capture_output=True, text=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    recorded = Counter((request, outcome) for _, request, outcome in ledger_rows(home, agency))
    on_disk = written_outcomes(out)
    # No outcome file in place without the ledger entries of its rows.
    assert not on_disk - recorded, "outcome files in place whose outcomes the ledger does not hold"
    if point == "commit":
        assert not (out / "manifest.json").exists()
    if point.endswith("staging lost"):
        for staging in tmp_path.glob(".out.*.staging"):
            shutil.rmtree(staging)
    finished = taxmatch(*run)
    assert finished.returncode == 0, finished.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    batch_id = manifest["batch_id"]
    entries = Counter((request, outcome) for batch, request, outcome in ledger_rows(home, agency) if batch == batch_id)
    # Every outcome accounted for exactly once: the finishing run added nothing to what the killed one committed.
    assert entries == written_outcomes(out)
    assert sum(entries.values()) == manifest["counts"]["total"] == 150
    assert not list(tmp_path.glob(".out.*")), "the staging directory is left behind"
    refused = taxmatch(*run)
    assert refused.returncode == 2 and "--rerun" in refused.stderr
    verified = taxmatch("--home", str(home), "ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.slow
def test_a_batch_that_ran_is_refused_and_a_rerun_is_a_new_batch_naming_it(
    loaded_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from taxmatch.cli import app
    from taxmatch.database import open_database
    from taxmatch.ledger.report import build_report
    from taxmatch.settings import Workspace

    home, requests = loaded_workspace
    run = ["--home", str(home), "batch", "run", str(requests), "--agency", "RERUN", "--as-of", AS_OF]
    first = CliRunner().invoke(app, [*run, "--out", str(tmp_path / "first")])
    assert first.exit_code == 0, first.output
    first_id = json.loads((tmp_path / "first" / "manifest.json").read_text(encoding="utf-8"))["batch_id"]
    again = CliRunner().invoke(app, [*run, "--out", str(tmp_path / "again")])
    assert again.exit_code == 2
    assert first_id in again.output and "--rerun" in again.output
    assert not (tmp_path / "again").exists()
    rerun = CliRunner().invoke(app, [*run, "--out", str(tmp_path / "rerun"), "--rerun"])
    assert rerun.exit_code == 0, rerun.output
    manifest = json.loads((tmp_path / "rerun" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["batch_id"] == f"{first_id}-r1" and manifest["repeats"] == first_id
    for name in OUTCOME_FILES:
        assert (tmp_path / "rerun" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()
    rows = ledger_rows(home, "RERUN")
    assert Counter(batch for batch, _, _ in rows) == {first_id: 150, f"{first_id}-r1": 150}
    # The accounting shows each disclosure once per batch: the re-run as a batch of its own.
    connection = open_database(Workspace(home), read_only=True).connection
    try:
        today = datetime.datetime.now(datetime.UTC).date()
        report = build_report(connection, today, today, agency="RERUN")
    finally:
        connection.close()
    disclosed = Counter(
        (disclosure.batch_id, disclosure.request_id)
        for taxpayer in report.taxpayers
        for disclosure in taxpayer.disclosures
    )
    assert disclosed and max(disclosed.values()) == 1
    assert {batch for batch, _ in disclosed} == {first_id, f"{first_id}-r1"}


def test_an_output_place_that_cannot_hold_the_batch_is_refused_before_anything_is_recorded(
    loaded_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from taxmatch.cli import app

    home, requests = loaded_workspace
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n", encoding="utf-8")
    run = ["--home", str(home), "batch", "run", str(requests), "--agency", "NOWHERE", "--as-of", AS_OF]
    for out in (a_file, a_file / "below"):
        result = CliRunner().invoke(app, [*run, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert "a-file" in result.output and "Traceback" not in result.output
    assert ledger_rows(home, "NOWHERE") == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file"]


# ---- staging folders of killed runs (personal data, nothing final) ------------------------------


def staging_dirs(*places: Path) -> list[Path]:
    return sorted(path for place in places for path in place.glob(".*.staging"))


@pytest.mark.slow
def test_the_next_batch_run_deletes_the_staging_folders_of_killed_runs_but_keeps_a_recorded_ones(
    loaded_workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    home, requests = loaded_workspace
    run = ["--home", str(home), "batch", "run", str(requests), "--as-of", AS_OF]

    def killed_at(point: str, agency: str, *out: str) -> None:
        killed = subprocess.run([sys.executable, "-c", DIE_AT, point, *run, "--agency", agency, *out],
                                capture_output=True, text=True, timeout=300)  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr

    killed_at("commit", "STALE-OUT", "--out", str(tmp_path / "killed"))  # beside an --out of the operator's
    (stale,) = staging_dirs(tmp_path)
    assert (stale / "disclosed.csv").is_file(), "the staged files hold personal data"
    killed_at("after-commit", "RECORDED", "--out", str(tmp_path / "recorded"))  # accounted: its staging is needed
    (recorded,) = staging_dirs(tmp_path)
    assert recorded.name.startswith(".recorded.") and not stale.exists()
    killed_at("commit", "STALE-HOME")  # in <home>/batches
    assert len(staging_dirs(home / "batches")) == 1 and staging_dirs(tmp_path) == [recorded]

    other = taxmatch(*run, "--agency", "NEXT", "--out", str(tmp_path / "next"))
    assert other.returncode == 0, other.stderr
    assert "removed 1 staging folder(s)" in other.stderr
    assert staging_dirs(home / "batches") == [] and staging_dirs(tmp_path) == [recorded]

    finished = taxmatch(*run, "--agency", "RECORDED", "--out", str(tmp_path / "recorded"))
    assert finished.returncode == 0, finished.stderr
    assert "nothing new" in finished.stdout
    assert sum(written_outcomes(tmp_path / "recorded").values()) == 150
    assert staging_dirs(tmp_path) == []


@pytest.mark.slow
def test_master_load_deletes_the_staging_folder_of_a_killed_run(tmp_path: Path) -> None:
    generate(tmp_path / "data", people=60, requests=10, seed=3, as_of=datetime.date(2026, 11, 25))
    home, master = tmp_path / "home", tmp_path / "data" / "master.csv"
    assert taxmatch("--home", str(home), "master", "load", str(master)).returncode == 0
    run = ["--home", str(home), "batch", "run", str(tmp_path / "data" / "requests.csv"), "--agency", "ICE"]
    killed = subprocess.run([sys.executable, "-c", DIE_AT, "commit", *run, "--as-of", AS_OF],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(staging_dirs(home / "batches")) == 1
    loaded = taxmatch("--home", str(home), "master", "load", str(master))
    assert loaded.returncode == 0, loaded.stderr
    assert "removed 1 staging folder(s)" in loaded.stderr
    assert staging_dirs(home / "batches") == []
