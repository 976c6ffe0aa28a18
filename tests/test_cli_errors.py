"""Bad paths through the real `taxmatch` command in a subprocess: one clear line, a non-zero exit,
never a traceback (issue 13 findings 9 and 10); and the lookup request shared with the API."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from taxmatch.api.app import LookupRequest
from taxmatch.cli import app, lookup_item
from taxmatch.ledger.model import command_line_actor

AS_OF = "2026-11-25"
TAXMATCH = str(Path(sys.executable).with_name("taxmatch"))
MASTER_HEADER = "tin,tax_year,role,first_name,middle_name,last_name,suffix,dob,street,unit,city,state,zip,phone\n"


def taxmatch(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TAXMATCH, *args], input=stdin, capture_output=True, text=True, timeout=300, check=False, env=os.environ
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-errors")
    home, data = root / "home", root / "data"
    for args in (
        ("synth", "--people", "200", "--requests", "30", "--out", str(data), "--as-of", AS_OF),
        ("--home", str(home), "master", "load", str(data / "master.csv")),
    ):
        done = taxmatch(*args)
        assert done.returncode == 0, done.stderr
    return {"root": root, "home": home, "data": data}


def ledger_entries(home: Path) -> int:
    done = taxmatch("--home", str(home), "ledger", "verify", "--json", "--allow-unsigned-tail")
    return int(json.loads(done.stdout)["entries"])


def assert_clean_failure(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    assert done.returncode != 0
    for text in expected:
        assert text in done.stderr, done.stderr


# Each builds the bad input under `root` and returns the command's arguments after `taxmatch`.
def missing_file(world: dict[str, Path]) -> list[str]:
    return ["--home", str(world["home"]), "batch", "run", str(world["root"] / "no-such.csv"), "--agency", "ICE"]


def a_directory(world: dict[str, Path]) -> list[str]:
    return ["--home", str(world["home"]), "batch", "run", str(world["data"]), "--agency", "ICE"]


def out_is_a_file(world: dict[str, Path]) -> list[str]:
    return ["--home", str(world["home"]), "batch", "run", str(world["data"] / "requests.csv"), "--agency", "ICE",
            "--out",
            str(world["data"] / "master.csv")]  # fmt: skip


def out_under_a_file(world: dict[str, Path]) -> list[str]:
    return ["--home", str(world["home"]), "batch", "run", str(world["data"] / "requests.csv"), "--agency", "ICE",
            "--out",
            str(world["data"] / "master.csv" / "out")]  # fmt: skip


def out_in_a_read_only_directory(world: dict[str, Path]) -> list[str]:
    locked = world["root"] / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return [
        "--home",
        str(world["home"]),
        "batch",
        "run",
        str(world["data"] / "requests.csv"),
        "--agency",
        "ICE",
        "--out",
        str(locked / "out"),
    ]


def out_where_nobody_writes(world: dict[str, Path]) -> list[str]:
    # Unwritable even for root (who writes into a read-only directory): the checks cannot foresee it.
    return ["--home", str(world["home"]), "batch", "run", str(world["data"] / "requests.csv"), "--agency", "ICE",
            "--out", "/proc/taxmatch-out"]  # fmt: skip


def header_only_master(world: dict[str, Path]) -> list[str]:
    path = world["root"] / "header-only.csv"
    path.write_text(MASTER_HEADER, encoding="utf-8")
    return ["--home", str(world["root"] / "scratch-home"), "master", "load", str(path)]  # keeps the shared master


def master_with_a_1mb_quoted_field(world: dict[str, Path]) -> list[str]:
    path = world["root"] / "big-field.csv"
    big = "A" * 1_048_576
    path.write_text(MASTER_HEADER + f'123456789,2024,primary,"{big}",,Lee,,,1 Main St,,Reno,NV,89501,\n', "utf-8")
    return ["--home", str(world["root"] / "scratch-home"), "master", "load", str(path)]  # keeps the shared master


def random_bytes_ndjson(world: dict[str, Path]) -> list[str]:
    path = world["root"] / "noise.ndjson"
    path.write_bytes(random.Random(13).randbytes(200_000))
    return ["--home", str(world["home"]), "batch", "run", str(path), "--agency", "ICE"]


BAD_PATHS: list[object] = [
    pytest.param(missing_file, "no such file", id="batch run: missing file"),
    pytest.param(a_directory, "is not a file", id="batch run: a directory"),
    pytest.param(out_is_a_file, "is an existing file, not a directory", id="--out: an existing file"),
    pytest.param(out_under_a_file, "is not a directory", id="--out: under a file"),
    pytest.param(
        out_in_a_read_only_directory,
        "is not writable",
        id="--out: read-only directory",
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory"),
    ),
    pytest.param(
        out_where_nobody_writes,
        "cannot write the outcome files",
        id="--out: under /proc",
        marks=pytest.mark.skipif(not Path("/proc").is_dir(), reason="no /proc"),
    ),
    pytest.param(random_bytes_ndjson, "not a NDJSON text file", id="batch run: random bytes as .ndjson"),
    pytest.param(header_only_master, "", id="master load: header-only CSV"),
    pytest.param(master_with_a_1mb_quoted_field, "", id="master load: 1 MB quoted field"),
]


@pytest.mark.parametrize(("bad_path", "message"), BAD_PATHS)
def test_a_bad_path_is_one_line_and_a_non_zero_exit_never_a_traceback(
    world: dict[str, Path], bad_path: Callable[[dict[str, Path]], list[str]], message: str
) -> None:
    before = ledger_entries(world["home"])
    done = taxmatch(*bad_path(world))
    assert_clean_failure(done, "error:", message)
    assert ledger_entries(world["home"]) == before


def test_a_bad_policy_is_refused_in_one_line(world: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "policy.toml").write_text('disclose_phone = "false"\n', encoding="utf-8")
    done = taxmatch("--home", str(home), "batch", "run", str(world["data"] / "requests.csv"), "--agency", "ICE")
    assert_clean_failure(done, "disclose_phone", "is text, not a boolean", "true or false")


# ---- lookup (finding 10) -----------------------------------------------------------------------------


def test_lookup_requires_an_agency(world: dict[str, Path]) -> None:
    before = ledger_entries(world["home"])
    done = taxmatch("--home", str(world["home"]), "lookup", "--first-name", "Ann", "--last-name", "Lee")
    assert_clean_failure(done, "--agency")
    assert ledger_entries(world["home"]) == before


def test_a_bare_lookup_is_a_usage_error_and_records_nothing(world: dict[str, Path]) -> None:
    before = ledger_entries(world["home"])
    for extra in ([], ["--request-id", "r1"], ["--as-of", AS_OF]):
        done = taxmatch("--home", str(world["home"]), "lookup", "--agency", "ICE", *extra)
        assert_clean_failure(done, "no request given")
    assert ledger_entries(world["home"]) == before


def test_lookup_refuses_unknown_fields_as_the_api_does(world: dict[str, Path]) -> None:
    before = ledger_entries(world["home"])
    body = {"first_name": "Ann", "last_name": "Lee", "ssn": "123456789"}
    done = taxmatch("--home", str(world["home"]), "lookup", "--agency", "ICE", "--json", "-", stdin=json.dumps(body))
    assert_clean_failure(done, "ssn", "Extra inputs are not permitted")
    assert "123456789" not in done.stderr  # the refusal never echoes a value
    nested = {"first_name": "Ann", "prior_addresses": [{"street": "1 Main St", "county": "Washoe"}]}
    done = taxmatch("--home", str(world["home"]), "lookup", "--agency", "ICE", "--json", "-", stdin=json.dumps(nested))
    assert_clean_failure(done, "prior_addresses.0.county")
    assert ledger_entries(world["home"]) == before


def test_a_lookup_is_recorded_under_its_agency_and_signed_to_the_end(world: dict[str, Path]) -> None:
    row = {"first_name": "Ann", "last_name": "Lee", "street": "1 Main St", "city": "Reno", "state": "NV"}
    done = taxmatch("--home", str(world["home"]), "lookup", "--agency", "CBP", "--json", "-", stdin=json.dumps(row))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "REJECTED"
    assert taxmatch("--home", str(world["home"]), "ledger", "verify").returncode == 0  # no unsigned tail
    exported = world["root"] / "ledger.jsonl"
    assert taxmatch("--home", str(world["home"]), "ledger", "export", "--out", str(exported)).returncode == 0
    last = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines() if '"entry"' in line][-1]
    assert (last["agency"], last["batch_id"], last["actor"]) == ("CBP", "lookup", command_line_actor())
    assert last["request_id"].startswith("lookup-")  # an id of its own, as an API lookup gets


def test_the_cli_and_the_api_read_one_request_schema() -> None:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    flags = {param.name for param in command.commands["lookup"].params}
    renamed = {"zip": "zip_code"}
    for field in LookupRequest.model_fields:
        if field != "prior_addresses":  # a list: through --json only
            assert renamed.get(field, field) in flags, f"lookup has no flag for the API field {field}"
    # Values are read as the API reads them: numbers become text, the NDJSON reader then parses them.
    item = lookup_item({"first_name": "Ann", "last_name": "Lee", "zip": 89501, "tax_years": 2024})
    assert (item.zip, item.tax_years) == ("89501", "2024")
    assert item.request_id.startswith("lookup-")


def test_outcome_directories_and_files_are_private(world: dict[str, Path]) -> None:
    out = world["root"] / "new" / "out"
    done = taxmatch("--home", str(world["home"]), "batch", "run", str(world["data"] / "requests.csv"),
                    "--agency", "ICE", "--as-of", AS_OF, "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = taxmatch("--home", str(world["home"]), "batch", "run", str(world["data"] / "requests.csv"),
                    "--agency", "CBP", "--as-of", AS_OF)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (default_out,) = [
        path.parent
        for path in (world["home"] / "batches").glob("*/manifest.json")
        if json.loads(path.read_text(encoding="utf-8"))["agency"] == "CBP"
    ]
    for directory in (world["home"], world["home"] / "batches", out, default_out):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for path in [*out.iterdir(), *default_out.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
