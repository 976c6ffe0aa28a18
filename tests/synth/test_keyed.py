"""The keyed noise model: deterministic, every variation present, a truth validation agrees with,
and the default model's output untouched."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxmatch.cli import app
from taxmatch.records import RequestRecord
from taxmatch.settings import Policy
from taxmatch.synth import (
    NOISE_MODELS,
    TRUTH_COLUMNS,
    VARIATION_KINDS,
    VARIATIONS_COLUMN,
    generate,
    read_truth,
    variation_kind,
)
from taxmatch.synth.keyed import ERROR_KINDS
from taxmatch.synth.keying import RESPELLINGS
from taxmatch.validate import validate_file, validate_request

AS_OF = date(2025, 6, 1)
FILES = ("master.csv", "requests.csv", "truth.csv", "meta.json")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _digest(out: Path) -> str:
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((out / name).read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keyed")
    generate(out, people=3000, requests=1500, seed=11, as_of=AS_OF, noise="keyed")
    return out


def test_household_output_is_what_it_was_before_there_was_a_choice(tmp_path: Path) -> None:
    # SHA-256 of master, requests, truth and meta as written at f585c0d, before the keyed model existed.
    # A deliberate change to the household model changes this hash; nothing else should.
    generate(tmp_path / "default", people=400, requests=200, seed=3, as_of=AS_OF)
    generate(tmp_path / "named", people=400, requests=200, seed=3, as_of=AS_OF, noise="household")
    expected = "74d226a1488f0c4bf73b861b0541e67b8a42eac4664bb35a2cdb5fd706167f74"
    assert _digest(tmp_path / "default") == _digest(tmp_path / "named") == expected


def test_keyed_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=400, requests=200, seed=3, as_of=AS_OF, noise="keyed")
    generate(tmp_path / "b", people=400, requests=200, seed=3, as_of=AS_OF, noise="keyed")
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    generate(tmp_path / "c", people=400, requests=200, seed=4, as_of=AS_OF, noise="keyed")
    assert (tmp_path / "a" / "requests.csv").read_bytes() != (tmp_path / "c" / "requests.csv").read_bytes()


def test_keyed_and_household_share_the_population_not_the_requests(tmp_path: Path) -> None:
    generate(tmp_path / "h", people=400, requests=200, seed=3, as_of=AS_OF)
    generate(tmp_path / "k", people=400, requests=200, seed=3, as_of=AS_OF, noise="keyed")
    assert (tmp_path / "h" / "master.csv").read_bytes() == (tmp_path / "k" / "master.csv").read_bytes()
    assert (tmp_path / "h" / "requests.csv").read_bytes() != (tmp_path / "k" / "requests.csv").read_bytes()


def test_unknown_noise_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="household, keyed"):
        generate(tmp_path, people=50, requests=10, noise="febrl")


def test_truth_names_the_variations_and_meta_the_model(keyed: Path) -> None:
    with (keyed / "truth.csv").open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == [*TRUTH_COLUMNS, VARIATIONS_COLUMN]
    meta = json.loads((keyed / "meta.json").read_text(encoding="utf-8"))
    assert meta["noise"] == "keyed"
    truth = read_truth(keyed / "truth.csv")
    assert meta["cases"] == dict(sorted(Counter(row["case"] for row in truth).items()))
    assert meta["outcomes"] == dict(sorted(Counter(row["expected_outcome"] for row in truth).items()))


def test_every_variation_kind_occurs_in_a_moderate_sample(keyed: Path) -> None:
    labels = [label for row in read_truth(keyed / "truth.csv") for label in row["variations"].split(";") if label]
    kinds = Counter(variation_kind(label) for label in labels)
    assert set(kinds) == set(VARIATION_KINDS) - {"directional"}
    # The error kinds are all drawn from ERROR_KINDS, directional as dropped or added.
    assert set(ERROR_KINDS) - {"directional"} <= set(kinds)
    assert kinds["directional_dropped"] and kinds["directional_added"]


def test_some_requests_carry_two_or_three_errors(keyed: Path) -> None:
    not_errors = ("missing_", "dob_format")
    errors = Counter(
        sum(1 for label in row["variations"].split(";") if label and not label.startswith(not_errors))
        for row in read_truth(keyed / "truth.csv")
    )
    total = sum(errors.values())
    assert errors[0] and errors[1] and errors[2] and errors[3]
    # Drawn as 45/35/14/6 percent; a few percent off either way at 1,500 requests.
    assert 0.08 < errors[2] / total < 0.20 and 0.02 < errors[3] / total < 0.10
    assert max(errors) <= 3


def test_validation_agrees_with_the_truth_on_every_request(keyed: Path) -> None:
    verdicts = validate_file(keyed / "requests.csv", Policy.default(), AS_OF)
    truth = read_truth(keyed / "truth.csv")
    disagreements = []
    made_invalid = valid = 0
    for expected, verdict in zip(truth, verdicts, strict=True):
        if expected["case"] == "duplicate_request_id":
            continue
        assert verdict is not None
        got = {code.value for code in verdict}
        if expected["expected_outcome"] == "REJECTED":
            wanted = set(expected["expected_codes"].split(";"))
            made_invalid += not expected["case"].startswith("invalid_")
            if not wanted <= got:
                disagreements.append((expected, got))
        else:
            valid += 1
            if got:
                disagreements.append((expected, got))
    assert disagreements == []
    # Noise that breaks the contract (a ZIP slip off the map, a digit read into a name, a date that
    # is no date) turns a few percent of otherwise valid requests into expected rejections.
    assert 0.01 < made_invalid / (made_invalid + valid) < 0.08


def test_disclosed_truth_names_the_latest_return_in_the_period(keyed: Path) -> None:
    years: dict[str, set[int]] = {}
    for row in _rows(keyed / "master.csv"):
        years.setdefault(row["tin"].replace("-", ""), set()).add(int(row["tax_year"]))
    for request, expected in zip(_rows(keyed / "requests.csv"), read_truth(keyed / "truth.csv"), strict=True):
        if expected["expected_outcome"] == "DISCLOSED":
            lo, _, hi = request["tax_years"].partition("-")
            in_period = [y for y in years[expected["expected_tin"]] if int(lo) <= y <= int(hi or lo)]
            assert int(expected["expected_tax_year"]) == max(in_period), expected


def test_no_respelling_is_rejected_as_a_placeholder() -> None:
    # The respellings are names the keyed model writes that the name tables may not hold (Jon, Shawn).
    request = RequestRecord(
        request_id="r1", first_name="Maria", last_name="Garcia", street="123 N Main St", city="Springfield",
        state="IL", zip="62701", a_number="A123456789", removal_order_date="2024-01-15", statute="8 USC 1326",
        tax_years="2020-2023",
    )  # fmt: skip
    policy = Policy.default()
    assert validate_request(request, policy, AS_OF) == []
    rejected = [
        (field, name)
        for name in sorted(RESPELLINGS)
        for field in ("first_name", "last_name")
        if validate_request(dataclasses.replace(request, **{field: name}), policy, AS_OF)
    ]
    assert rejected == []


def test_cli_takes_the_noise_model_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["synth", "--people", "60", "--requests", "20", "--out", str(tmp_path), "--as-of", AS_OF.isoformat()]
    result = runner.invoke(app, [*args, "--noise", "keyed"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "meta.json").read_text(encoding="utf-8"))["noise"] == "keyed"
    refused = runner.invoke(app, [*args, "--noise", "typo"], catch_exceptions=False)
    assert refused.exit_code == 2 and "household, keyed" in refused.output
    # The help names every model (the option cannot import the list without slowing every command).
    help_text = runner.invoke(app, ["synth", "--help"], catch_exceptions=False).output
    assert all(name in help_text for name in NOISE_MODELS)
