"""End to end through the real CLI, DuckDB and Splink: synth -> master load -> batch run -> lookup."""

from __future__ import annotations

import csv
import datetime
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxmatch import parallel, pipeline
from taxmatch.cli import app

AS_OF = "2026-11-25"
PEOPLE = 3_000
REQUESTS = 5_200


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e")
    home, data = root / "home", root / "data"
    invoke("synth", "--people", str(PEOPLE), "--requests", str(REQUESTS), "--out", str(data), "--as-of", AS_OF)
    # One unreadable row at the end must cost only itself.
    with (data / "requests.csv").open("a", encoding="utf-8") as handle:
        handle.write("broken-1,only,three\n")
    invoke("--home", str(home), "master", "load", str(data / "master.csv"))
    out = root / "out"
    invoke("--home", str(home), "batch", "run", str(data / "requests.csv"), "--agency", "ICE", "--as-of", AS_OF,
           "--out", str(out))  # fmt: skip
    return {"root": root, "home": home, "data": data, "out": out}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_input_row_appears_exactly_once(workspace: dict[str, Path]) -> None:
    inputs = read_rows(workspace["data"] / "requests.csv")
    assert len(inputs) >= 5_000
    outputs: Counter[str] = Counter()
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        outputs.update(row["request_id"] for row in read_rows(workspace["out"] / name))
    expected = Counter(row["request_id"] for row in inputs)
    assert outputs == expected
    duplicated = [request_id for request_id, count in expected.items() if count > 1]
    assert duplicated, "the synthetic batch should repeat some request ids"
    rejected = read_rows(workspace["out"] / "rejected.csv")
    for request_id in duplicated:
        codes = [row["reason_codes"] for row in rejected if row["request_id"] == request_id]
        assert "DUPLICATE_REQUEST_ID" in codes


def test_malformed_row_is_rejected_with_its_line(workspace: dict[str, Path]) -> None:
    rejected = {row["request_id"]: row for row in read_rows(workspace["out"] / "rejected.csv")}
    broken = rejected["broken-1"]
    assert broken["reason_codes"] == "MALFORMED_RECORD"
    assert f"line {REQUESTS + 2}" in broken["reasons"]


def test_manifest_names_inputs_outputs_and_versions(workspace: dict[str, Path]) -> None:
    manifest = json.loads((workspace["out"] / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["agency"] == "ICE" and manifest["as_of"] == AS_OF
    assert manifest["counts"]["total"] == REQUESTS + 1
    assert set(manifest["outputs"]) == {"disclosed.csv", "rejected.csv", "unmatched.csv"}
    assert manifest["model_version"].startswith("model-") and manifest["policy_version"].startswith("policy-")
    assert len(manifest["input"]["sha256"]) == 64


def test_rerun_is_byte_identical(workspace: dict[str, Path]) -> None:
    again = workspace["root"] / "again"
    invoke("--home", str(workspace["home"]), "batch", "run", str(workspace["data"] / "requests.csv"),
           "--agency", "ICE", "--as-of", AS_OF, "--out", str(again), "--rerun")  # fmt: skip
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        assert (again / name).read_bytes() == (workspace["out"] / name).read_bytes(), name


def test_a_batch_split_over_two_processes_writes_the_same_files(
    workspace: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fixture's batch is below the split threshold: one process. Here validation, choosing and
    # rendering the outcome files each run half (or beside the ledger) in a forked process.
    if not parallel.can_fork():
        pytest.skip("needs os.fork and two cores")
    monkeypatch.setattr(pipeline, "MIN_ITEMS_TO_SPLIT", 100)
    forks = []
    real_fork = os.fork

    def counted_fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", counted_fork)
    split = workspace["root"] / "split"
    invoke("--home", str(workspace["home"]), "batch", "run", str(workspace["data"] / "requests.csv"),
           "--agency", "ICE", "--as-of", AS_OF, "--out", str(split), "--rerun")  # fmt: skip
    assert len(forks) == 3, "validation, choosing, rendering"
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        assert (split / name).read_bytes() == (workspace["out"] / name).read_bytes(), name


def test_outputs_are_spreadsheet_safe(workspace: dict[str, Path]) -> None:
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        for row in read_rows(workspace["out"] / name):
            for value in row.values():
                assert not value.startswith(("=", "+", "-", "@")), (name, value)


def test_lookup_gives_the_batch_decision(workspace: dict[str, Path]) -> None:
    outcome_of: dict[str, str] = {}
    for name, outcome in (("disclosed.csv", "DISCLOSED"), ("rejected.csv", "REJECTED"),
                          ("unmatched.csv", "NOT_MATCHED")):  # fmt: skip
        for row in read_rows(workspace["out"] / name):
            outcome_of.setdefault(row["request_id"], outcome)
    inputs = read_rows(workspace["data"] / "requests.csv")
    # A repeated id has two outcomes (its first, then DUPLICATE_REQUEST_ID); lookup has no batch to repeat in.
    repeated = {request_id for request_id, count in Counter(row["request_id"] for row in inputs).items() if count > 1}
    sample = [row for row in inputs[:600:10] if row["request_id"] not in repeated and row.get("last_name") is not None]
    assert {outcome_of[row["request_id"]] for row in sample} == {"DISCLOSED", "REJECTED", "NOT_MATCHED"}
    for row in sample:
        request_file = workspace["root"] / "one.json"
        request_file.write_text(json.dumps(row), encoding="utf-8")
        lookup = ("lookup", "--agency", "ICE", "--json", str(request_file), "--as-of", AS_OF)
        answer = json.loads(invoke("--home", str(workspace["home"]), *lookup))
        assert answer["outcome"] == outcome_of[row["request_id"]], row["request_id"]


def test_load_reports_bad_master_rows_and_keeps_going(tmp_path: Path) -> None:
    master = tmp_path / "master.csv"
    master.write_text(
        "tin,tax_year,role,first_name,middle_name,last_name,suffix,dob,street,unit,city,state,zip,phone\n"
        "123-45-6789,2024,primary,Ann,,Lee,,1980-01-02,1 Main St,,Reno,NV,89501,\n"
        "12345,2024,primary,Bob,,Lee,,1980-01-02,1 Main St,,Reno,NV,89501,\n"
        "223-45-6789,2024,primary,Cy,,Lee\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "master", "load", str(master)])
    assert result.exit_code == 0, result.output
    assert "1 returns of 1 taxpayers" in result.output
    rejects = (tmp_path / "home" / "master-rejects.csv").read_text(encoding="utf-8")
    assert "master.csv,3,tin is not 9 digits" in rejects
    assert "master.csv,4,6 fields where the header has 14" in rejects
    assert "Bob" not in rejects


def test_missing_master_is_a_clear_error(tmp_path: Path) -> None:
    requests = tmp_path / "requests.csv"
    requests.write_text("request_id,first_name,last_name\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "batch", "run", str(requests), "--agency", "X"])
    assert result.exit_code == 2
    assert "master load" in result.output


def test_every_outcome_has_its_ledger_entry(workspace: dict[str, Path]) -> None:
    exported = workspace["root"] / "ledger.jsonl"
    invoke("--home", str(workspace["home"]), "ledger", "export", "--out", str(exported))
    manifest = json.loads((workspace["out"] / "manifest.json").read_text(encoding="utf-8"))
    recorded: Counter[tuple[str, str]] = Counter()
    for line in exported.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("batch_id") == manifest["batch_id"]:
            recorded[(entry["request_id"], entry["outcome"])] += 1
    written: Counter[tuple[str, str]] = Counter()
    for name, outcome in (("disclosed.csv", "DISCLOSED"), ("rejected.csv", "REJECTED"),
                          ("unmatched.csv", "NOT_MATCHED")):  # fmt: skip
        written.update((row["request_id"], outcome) for row in read_rows(workspace["out"] / name))
    # Re-runs (--rerun) are recorded as batches of their own: this batch id holds each outcome once.
    assert recorded == written
    invoke("--home", str(workspace["home"]), "ledger", "verify")


def test_master_data_is_not_in_the_database_file_in_clear(workspace: dict[str, Path]) -> None:
    first = read_rows(workspace["data"] / "master.csv")[0]
    raw = (workspace["home"] / "taxmatch.duckdb").read_bytes()
    for value in (first["tin"].replace("-", ""), first["tin"], first["last_name"], first["street"]):
        assert value.encode("utf-8") not in raw, "a master value is readable in the database file"


def test_phone_and_full_tin_only_where_the_policy_releases_them(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    invoke("synth", "--people", "300", "--requests", "150", "--out", str(data), "--as-of", AS_OF)
    invoke("--home", str(home), "master", "load", str(data / "master.csv"))
    default_out, released_out = tmp_path / "default", tmp_path / "released"
    run = ("batch", "run", str(data / "requests.csv"), "--agency", "ICE", "--as-of", AS_OF, "--out")
    invoke("--home", str(home), *run, str(default_out))
    policy = (home / "policy.toml").read_text(encoding="utf-8")
    policy = policy.replace("disclose_phone = false", "disclose_phone = true")
    policy = policy.replace("disclose_full_tin = false", "disclose_full_tin = true")
    (home / "policy.toml").write_text(policy, encoding="utf-8")
    invoke("--home", str(home), *run, str(released_out))
    header = (default_out / "disclosed.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith(",match_probability,evidence")
    released = read_rows(released_out / "disclosed.csv")
    assert released and list(released[0])[-2:] == ["tin", "phone"]
    assert all(row["tin"].endswith(row["tin_last4"]) and len(row["tin"]) == 9 for row in released)


def test_a_stray_quote_in_a_request_file_costs_its_own_line_only(workspace: dict[str, Path]) -> None:
    # Issue 13, finding 2: an unterminated quote swallowed RQ00000032-44: no outcome, no ledger
    # entry, and a manifest of 287 records for 300 lines.
    header, *lines = (workspace["data"] / "requests.csv").read_text(encoding="utf-8").splitlines(keepends=True)[:61]
    lines[31] = lines[31].replace(",", ',"', 1)  # `"` before the first name
    first, rest = lines[43].split(",", 1)
    lines[43] = first + "," + rest.replace(",", '"X,', 1)  # `"X` after the first name, twelve lines on
    damaged = workspace["root"] / "stray-quote.csv"
    damaged.write_text(header + "".join(lines), encoding="utf-8")
    out = workspace["root"] / "stray-quote-out"
    invoke("--home", str(workspace["home"]), "batch", "run", str(damaged), "--agency", "ICE", "--as-of", AS_OF,
           "--out", str(out))  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["total"] == len(lines)
    outputs = ("disclosed.csv", "rejected.csv", "unmatched.csv")
    written = Counter(row["request_id"] for name in outputs for row in read_rows(out / name))
    assert written == Counter(line.split(",", 1)[0] for line in lines)
    exported = workspace["root"] / "stray-quote-ledger.jsonl"
    invoke("--home", str(workspace["home"]), "ledger", "export", "--out", str(exported))
    entries = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert Counter(entry["request_id"] for entry in entries if entry.get("batch_id") == manifest["batch_id"]) == written
    broken = [row for row in read_rows(out / "rejected.csv") if "line 33:" in row["reasons"]]
    assert [(row["request_id"], row["reason_codes"]) for row in broken] == [
        (lines[31].split(",", 1)[0], "MALFORMED_RECORD")
    ]


def test_cli_lookups_are_accounted_as_api_lookups_are_each_an_entry_of_its_own(workspace: dict[str, Path]) -> None:
    """Issue 13: every CLI lookup was recorded as request `lookup` by actor `cli`, so the accounting
    could not tell two of them apart. Now, as the API does (`api:<key id>`, `lookup-<random>`): the
    login of who looked up and an id of its own, with the ledger's format unchanged."""
    from taxmatch.ledger.model import command_line_actor

    disclosed = read_rows(workspace["out"] / "disclosed.csv")[0]["request_id"]
    (row,) = [row for row in read_rows(workspace["data"] / "requests.csv") if row["request_id"] == disclosed]
    del row["request_id"]
    request_file = workspace["root"] / "no-id.json"
    request_file.write_text(json.dumps(row), encoding="utf-8")
    home = str(workspace["home"])
    answers = [
        json.loads(invoke("--home", home, "lookup", "--agency", "ICE", "--json", str(request_file), "--as-of", AS_OF))
        for _ in range(2)
    ]
    assert [answer["outcome"] for answer in answers] == ["DISCLOSED", "DISCLOSED"]
    ids = [answer["request_id"] for answer in answers]
    assert ids[0] != ids[1] and all(request_id.startswith("lookup-") for request_id in ids)

    exported = workspace["root"] / "lookups.jsonl"
    invoke("--home", home, "ledger", "export", "--out", str(exported))
    entries = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    mine = [entry for entry in entries if entry.get("request_id") in ids]
    assert [(entry["batch_id"], entry["actor"]) for entry in mine] == [("lookup", command_line_actor())] * 2
    invoke("--home", home, "ledger", "verify")
    invoke("ledger", "verify", "--file", str(exported))

    reports = workspace["root"] / "report"
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    invoke("--home", home, "ledger", "report", "--from", today, "--to", today, "--out", str(reports))
    listed = [line for line in read_rows(reports / "disclosures.csv") if line["request_id"] in ids]
    assert sorted((line["actor"], line["request_id"]) for line in listed) == sorted(
        (command_line_actor(), request_id) for request_id in ids
    )


def test_the_command_line_actor_names_a_login_safely() -> None:
    from taxmatch.ledger.model import command_line_actor

    assert command_line_actor("ana") == "cli:ana"
    assert command_line_actor("a b;c\n") == "cli:a_b_c_"
    assert command_line_actor("") == "cli:unknown"
    assert len(command_line_actor("x" * 500)) == len("cli:") + 64
