"""The synthetic generator: contract columns, determinism, and a truth that agrees with the data."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from taxmatch.records import REJECTION_CODES, REQUEST_COLUMNS, ReasonCode
from taxmatch.synth import CASES, MASTER_COLUMNS, TRUTH_COLUMNS, case_counts, generate, read_truth

AS_OF = date(2025, 6, 1)
FILES = ("master.csv", "requests.csv", "truth.csv", "meta.json")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _period(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, people=3000, requests=1500, seed=11, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def master_years(dataset: Path) -> dict[str, set[int]]:
    years: dict[str, set[int]] = defaultdict(set)
    for row in _rows(dataset / "master.csv"):
        years[_digits(row["tin"])].add(int(row["tax_year"]))
    return years


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=400, requests=200, seed=3, as_of=AS_OF)
    generate(tmp_path / "b", people=400, requests=200, seed=3, as_of=AS_OF)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_another_seed_gives_another_population(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=200, requests=50, seed=1, as_of=AS_OF)
    generate(tmp_path / "b", people=200, requests=50, seed=2, as_of=AS_OF)
    assert (tmp_path / "a" / "master.csv").read_bytes() != (tmp_path / "b" / "master.csv").read_bytes()


def test_headers_are_the_contract_columns(dataset: Path) -> None:
    assert _header(dataset / "master.csv") == list(MASTER_COLUMNS)
    assert list(MASTER_COLUMNS) == [
        "tin", "tax_year", "role", "first_name", "middle_name", "last_name", "suffix", "dob",
        "street", "unit", "city", "state", "zip", "phone",
    ]  # fmt: skip
    assert _header(dataset / "requests.csv") == list(REQUEST_COLUMNS)
    assert _header(dataset / "truth.csv") == list(TRUTH_COLUMNS)


def test_every_case_is_present_and_counted_in_meta(dataset: Path) -> None:
    truth = read_truth(dataset / "truth.csv")
    seen = {row["case"] for row in truth}
    assert seen == {case.name for case in CASES}
    meta = json.loads((dataset / "meta.json").read_text(encoding="utf-8"))
    assert meta["requests"] == len(truth) == 1500
    assert sum(meta["cases"].values()) == 1500
    assert meta["as_of"] == AS_OF.isoformat()
    assert meta["returns"]["total"] == len(_rows(dataset / "master.csv"))
    assert meta["persons"] >= 3000


def test_case_counts_add_up_and_cover_every_case() -> None:
    for total in (1, 7, 100, 1500, 123_457):
        assert sum(case_counts(total).values()) == total
    assert min(case_counts(1500).values()) >= 1


def test_truth_rows_follow_request_order(dataset: Path) -> None:
    requests = _rows(dataset / "requests.csv")
    truth = read_truth(dataset / "truth.csv")
    assert [r["request_id"] for r in requests] == [t["request_id"] for t in truth]


def test_disclosed_truth_names_the_latest_return_in_the_period(
    dataset: Path, master_years: dict[str, set[int]]
) -> None:
    requests = _rows(dataset / "requests.csv")
    truth = read_truth(dataset / "truth.csv")
    disclosed = 0
    for request, expected in zip(requests, truth, strict=True):
        if expected["expected_outcome"] != "DISCLOSED":
            continue
        disclosed += 1
        years = master_years[expected["expected_tin"]]
        assert years, expected
        lo, hi = _period(request["tax_years"])
        assert int(expected["expected_tax_year"]) == max(y for y in years if lo <= y <= hi), expected
    assert disclosed > 0.7 * len(truth)


def test_disclosed_requests_give_a_zip_from_the_targets_own_returns(dataset: Path) -> None:
    zips: dict[str, set[str]] = defaultdict(set)
    for row in _rows(dataset / "master.csv"):
        zips[_digits(row["tin"])].add(row["zip"][:5])
    for request, expected in zip(_rows(dataset / "requests.csv"), read_truth(dataset / "truth.csv"), strict=True):
        if expected["expected_outcome"] == "DISCLOSED":
            assert request["zip"] in zips[expected["expected_tin"]], (request, expected)


def test_not_matched_truth(dataset: Path, master_years: dict[str, set[int]]) -> None:
    for request, expected in zip(_rows(dataset / "requests.csv"), read_truth(dataset / "truth.csv"), strict=True):
        case = expected["case"]
        if case in ("nonfiler", "nonfiling_spouse", "nonfiler_namesake") and request["tin"]:
            assert _digits(request["tin"]) not in master_years, request
        if case == "no_return_in_period":
            lo, hi = _period(request["tax_years"])
            years = master_years[expected["expected_tin"]]
            assert years and not any(lo <= y <= hi for y in years)
            assert expected["expected_codes"] == ReasonCode.NO_RETURN_IN_PERIOD.value
        if case == "sr_jr_no_dob":
            assert not request["dob"] and not request["tin"] and not request["suffix"]
            assert expected["expected_codes"] == ReasonCode.AMBIGUOUS.value
        if expected["expected_outcome"] == "NOT_MATCHED" and case != "no_return_in_period":
            assert expected["expected_tin"] == ""


def test_rejections_cover_every_code_with_exactly_one_each(dataset: Path) -> None:
    requests = _rows(dataset / "requests.csv")
    truth = read_truth(dataset / "truth.csv")
    codes = set()
    seen_ids: set[str] = set()
    for request, expected in zip(requests, truth, strict=True):
        if expected["expected_outcome"] == "REJECTED":
            assert ";" not in expected["expected_codes"]
            codes.add(expected["expected_codes"])
            assert expected["expected_tin"] == ""
        if expected["case"] == "duplicate_request_id":
            assert request["request_id"] in seen_ids
        else:
            assert request["request_id"] not in seen_ids
        seen_ids.add(request["request_id"])
    wanted = {c.value for c in REJECTION_CODES if c is not ReasonCode.MALFORMED_RECORD}
    assert codes == wanted


def test_tins_are_well_formed_and_one_per_person(dataset: Path) -> None:
    dobs: dict[str, set[str]] = defaultdict(set)
    for row in _rows(dataset / "master.csv"):
        tin = _digits(row["tin"])
        assert len(tin) == 9 and tin[:3] not in ("000", "666") and tin[3:5] != "00" and tin[5:] != "0000"
        if tin.startswith("9"):
            assert 70 <= int(tin[3:5]) <= 88
        if row["dob"]:
            dobs[tin].add(row["dob"])
    assert len(dobs) > 2000
    assert all(len(found) == 1 for found in dobs.values())


def test_valid_requests_use_permitted_periods(dataset: Path) -> None:
    for request, expected in zip(_rows(dataset / "requests.csv"), read_truth(dataset / "truth.csv"), strict=True):
        if expected["expected_outcome"] == "REJECTED":
            continue
        lo, hi = _period(request["tax_years"])
        assert AS_OF.year - 10 <= lo <= hi <= AS_OF.year - 1
        removal = date.fromisoformat(request["removal_order_date"])
        assert (AS_OF - removal).days >= 120
