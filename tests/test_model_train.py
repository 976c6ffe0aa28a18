"""`taxmatch model train` end to end: m learned by EM from a request file, then used by batch and lookup."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from taxmatch.cli import app

AS_OF = "2026-11-25"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_training_stores_a_new_model_that_batches_and_lookups_then_use(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    invoke("synth", "--people", "1000", "--requests", "500", "--out", str(data), "--as-of", AS_OF, "--noise", "keyed")
    invoke("--home", str(home), "master", "load", str(data / "master.csv"))
    before = tmp_path / "before"
    run = ("batch", "run", str(data / "requests.csv"), "--agency", "ICE", "--as-of", AS_OF)
    invoke("--home", str(home), *run, "--out", str(before))
    prior_version = json.loads((before / "manifest.json").read_text(encoding="utf-8"))["model_version"]

    output = invoke("--home", str(home), "model", "train", str(data / "requests.csv"), "--as-of", AS_OF)
    trained_version = output.strip().splitlines()[-1].removeprefix("model version: ")
    assert trained_version.startswith("model-") and trained_version != prior_version
    assert "key_address:" in output and "key_name:" in output

    after = tmp_path / "after"
    invoke("--home", str(home), *run, "--out", str(after), "--rerun")
    manifest = json.loads((after / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["model_version"] == trained_version
    # The same decision on demand as in the batch, under the learned m.
    with (after / "disclosed.csv").open(encoding="utf-8", newline="") as handle:
        disclosed = [row["request_id"] for row in csv.DictReader(handle)][:5]
    with (data / "requests.csv").open(encoding="utf-8", newline="") as handle:
        requests = {row["request_id"]: row for row in csv.DictReader(handle)}
    for request_id in disclosed:
        one = tmp_path / "one.json"
        one.write_text(json.dumps(requests[request_id]), encoding="utf-8")
        answer = json.loads(
            invoke("--home", str(home), "lookup", "--agency", "ICE", "--json", str(one), "--as-of", AS_OF)
        )
        assert answer["outcome"] == "DISCLOSED", request_id

    # A load fits the priors again.
    invoke("--home", str(home), "master", "load", str(data / "master.csv"))
    again = tmp_path / "again"
    invoke("--home", str(home), *run, "--out", str(again), "--rerun")
    assert json.loads((again / "manifest.json").read_text(encoding="utf-8"))["model_version"] == prior_version


def test_training_on_a_file_without_valid_requests_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = tmp_path / "requests.csv"
    empty.write_text("request_id,first_name,last_name\nR1,,\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["--home", str(home), "model", "train", str(empty)], catch_exceptions=False)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
