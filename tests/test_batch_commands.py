"""The operator's day on the real CLI: batch list/show, --format, --version, ledger report (agency, export)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from taxmatch import __version__, database
from taxmatch.cli import app
from taxmatch.synth import generate

AS_OF = "2026-11-25"
REQUESTS = 150


@dataclass(frozen=True)
class Day:
    root: Path
    home: Path
    requests: Path
    outs: dict[str, Path]  # "ICE" (csv), "ice" (parquet), "cbp" (ndjson) -> output directory


def run_cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    root = tmp_path_factory.mktemp("operator")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(database.KEY_FILE_ENVIRONMENT_VARIABLE, str(root / "keys" / "db.key"))
        patch.delenv(database.DB_KEY_ENVIRONMENT_VARIABLE, raising=False)
        generate(root / "data", people=300, requests=REQUESTS, seed=5, as_of=date.fromisoformat(AS_OF))
        home = root / "home"
        requests = root / "data" / "requests.csv"
        run_cli("--home", str(home), "master", "load", str(root / "data" / "master.csv"))
        outs = {"ICE": root / "out-csv", "ice": root / "out-parquet", "cbp": root / "out-ndjson"}
        for (agency, out), output_format in zip(outs.items(), ("csv", "parquet", "ndjson"), strict=True):
            run_cli("--home", str(home), "batch", "run", str(requests), "--agency", agency, "--as-of", AS_OF,
                    "--out", str(out), "--format", output_format)  # fmt: skip
        yield Day(root, home, requests, outs)


def manifest(out: Path) -> dict[str, object]:
    loaded = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_version() -> None:
    assert run_cli("--version").strip() == f"taxmatch {__version__}"


def test_batch_list_shows_every_batch_with_its_counts(day: Day) -> None:
    listed = json.loads(run_cli("--home", str(day.home), "batch", "list", "--json"))
    assert listed["total"] == 3
    by_agency = {batch["agency"]: batch for batch in listed["batches"]}
    assert set(by_agency) == {"ICE", "ice", "cbp"}
    for agency, out in day.outs.items():
        batch = by_agency[agency]
        assert batch["batch_id"] == manifest(out)["batch_id"]
        assert batch["status"] == "done" and batch["source"] == "cli"
        assert batch["processed"] == batch["total"] == REQUESTS
        counts = dict(manifest(out)["counts"])  # type: ignore[call-overload]
        counts.pop("total")
        assert batch["counts"] == counts
    table = run_cli("--home", str(day.home), "batch", "list")
    assert all(str(manifest(out)["batch_id"]) in table for out in day.outs.values())


def test_batch_list_agency_is_case_insensitive(day: Day) -> None:
    listed = json.loads(run_cli("--home", str(day.home), "batch", "list", "--json", "--agency", "Ice"))
    assert sorted(batch["agency"] for batch in listed["batches"]) == ["ICE", "ice"]


def test_batch_show_counts_by_reason_code_as_in_the_files(day: Day) -> None:
    out = day.outs["ICE"]
    batch_id = str(manifest(out)["batch_id"])
    shown = json.loads(run_cli("--home", str(day.home), "batch", "show", batch_id, "--json"))
    expected: Counter[str] = Counter()
    for name in ("rejected.csv", "unmatched.csv"):
        for row in csv_rows(out / name):
            expected.update(row["reason_codes"].split(";"))
    assert shown["reason_counts"] == dict(expected)
    assert list(shown["reason_counts"]) == sorted(expected, key=list(shown["reason_counts"]).index)
    assert shown["counts"]["unmatched"] == len(csv_rows(out / "unmatched.csv"))
    text = run_cli("--home", str(day.home), "batch", "show", batch_id)
    for code, count in expected.items():
        assert code in text and str(count) in text


def test_batch_show_unknown_id_is_a_clear_error(day: Day) -> None:
    output = run_cli("--home", str(day.home), "batch", "show", "b-nosuchbatch", code=2)
    assert "no batch 'b-nosuchbatch'" in output


def test_table_formats_hold_the_csv_rows(day: Day) -> None:
    csv_out, parquet_out, ndjson_out = day.outs["ICE"], day.outs["ice"], day.outs["cbp"]
    for stem in ("disclosed", "rejected", "unmatched"):
        expected = csv_rows(csv_out / f"{stem}.csv")
        from_parquet = pq.read_table(parquet_out / f"{stem}.parquet").to_pylist()
        with (ndjson_out / f"{stem}.ndjson").open(encoding="utf-8") as handle:
            from_ndjson = [json.loads(line) for line in handle]
        with (csv_out / f"{stem}.csv").open(encoding="utf-8") as handle:
            header = handle.readline().strip().split(",")
        assert pq.read_table(parquet_out / f"{stem}.parquet").column_names == header
        for rows in (from_parquet, from_ndjson):
            assert rows and all(sorted(row) == sorted(header) for row in rows)
            as_text = [
                {key: f"{value:.6f}" if key == "match_probability" else str(value) for key, value in row.items()}
                for row in rows
            ]
            assert as_text == expected, stem
    assert pq.read_table(parquet_out / "disclosed.parquet").schema.field("tax_year").type == "int64"
    outputs = manifest(parquet_out)["outputs"]
    assert isinstance(outputs, dict)
    assert sorted(outputs) == ["disclosed.parquet", "rejected.parquet", "unmatched.parquet"]
    for name, digest in outputs.items():
        assert hashlib.sha256((parquet_out / name).read_bytes()).hexdigest() == digest


def test_parquet_outputs_are_byte_identical_on_a_rerun(day: Day) -> None:
    again = day.root / "out-parquet-again"
    run_cli("--home", str(day.home), "batch", "run", str(day.requests), "--agency", "ice", "--as-of", AS_OF,
            "--out", str(again), "--format", "parquet", "--rerun")  # fmt: skip
    for stem in ("disclosed", "rejected", "unmatched"):
        assert (again / f"{stem}.parquet").read_bytes() == (day.outs["ice"] / f"{stem}.parquet").read_bytes()


def test_unknown_format_is_refused(day: Day) -> None:
    output = run_cli("--home", str(day.home), "batch", "run", str(day.requests), "--agency", "ICE",
                     "--format", "xlsx", code=2)  # fmt: skip
    assert "--format 'xlsx'" in output


def report_counts(home: Path, out: Path, *extra: str) -> list[dict[str, str]]:
    run_cli("--home", str(home), "ledger", "report", "--from", "2000-01-01", "--to", "2100-12-31", "--out", str(out),
            *extra)  # fmt: skip
    return csv_rows(out / "counts.csv")


def test_ledger_report_agency_is_case_insensitive(day: Day) -> None:
    counts = report_counts(day.home, day.root / "report-ice", "--agency", "iCe")
    assert {row["agency"] for row in counts} == {"ICE", "ice"}
    assert sum(int(row["count"]) for row in counts) >= 2 * REQUESTS


def test_ledger_report_from_a_verified_export_is_the_workspace_accounting(day: Day) -> None:
    export, key = day.root / "ledger.jsonl", day.root / "public.pem"
    run_cli("--home", str(day.home), "ledger", "export", "--out", str(export))
    run_cli("--home", str(day.home), "ledger", "public-key", "--out", str(key))
    from_workspace = report_counts(day.home, day.root / "report-workspace")
    from_export = report_counts(day.home, day.root / "report-export", "--file", str(export), "--public-key", str(key))
    assert from_export == from_workspace and from_export
    assert (day.root / "report-export" / "disclosures.csv").read_bytes() == (
        day.root / "report-workspace" / "disclosures.csv"
    ).read_bytes()


def test_ledger_report_refuses_an_export_that_does_not_verify(day: Day) -> None:
    export, key = day.root / "ledger-2.jsonl", day.root / "public-2.pem"
    run_cli("--home", str(day.home), "ledger", "export", "--out", str(export))
    run_cli("--home", str(day.home), "ledger", "public-key", "--out", str(key))
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    altered = next(index for index, line in enumerate(lines) if '"agency":"cbp"' in line)
    lines[altered] = lines[altered].replace('"agency":"cbp"', '"agency":"CBP"')
    export.write_text("".join(lines), encoding="utf-8")
    target = day.root / "report-refused"
    output = run_cli("--home", str(day.home), "ledger", "report", "--from", "2000-01-01", "--to", "2100-12-31",
                     "--file", str(export), "--public-key", str(key), "--out", str(target), code=1)  # fmt: skip
    assert "does not verify" in output and "altered" in output
    assert not target.exists()
    output = run_cli("--home", str(day.home), "ledger", "report", "--from", "2000-01-01", "--to", "2100-12-31",
                     "--file", str(export), code=1)  # fmt: skip
    assert "--file needs --public-key" in output


def test_unmatched_reasons_state_the_best_probability(day: Day) -> None:
    rows = csv_rows(day.outs["ICE"] / "unmatched.csv")
    assert rows
    for row in rows:
        assert re.search(r"best match probability( \d\.\d{6}|: no candidate found)$", row["reasons"]), row


def test_lookup_explain_prints_the_explanation(day: Day) -> None:
    request = csv_rows(day.requests)[0]
    path = day.root / "one-request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    lookup = ("--home", str(day.home), "lookup", "--agency", "ICE", "--json", str(path), "--as-of", AS_OF)
    answer = json.loads(run_cli(*lookup, "--explain"))
    assert answer["request_id"] == request["request_id"]
    assert answer["explanation"]["deciding_rule"]["rule"]
    plain = json.loads(run_cli(*lookup))
    assert "explanation" not in plain and plain["outcome"] == answer["outcome"]
