"""Outcome files scored against synthetic ground truth (used by `demo` and the benchmarks)."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class EvaluationReport:
    requests: int
    disclosures: int
    correct_disclosures: int
    wrong_disclosures: int
    findable: int
    invalid_total: int
    invalid_caught: int
    valid_rejected: int
    wrong_by_case: dict[str, int] = field(default_factory=dict)
    disclosures_by_case: dict[str, int] = field(default_factory=dict)
    findable_by_case: dict[str, int] = field(default_factory=dict)
    found_by_case: dict[str, int] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        return self.correct_disclosures / self.findable if self.findable else 1.0

    @property
    def wrong_disclosure_rate(self) -> float:
        return self.wrong_disclosures / self.disclosures if self.disclosures else 0.0


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def evaluate_batch(truth_path: Path, out_dir: Path) -> EvaluationReport:
    """Compare a batch's outcome files with truth.csv (duplicated ids: first occurrence counts).

    A disclosure is right when its TIN's last four digits and tax year are the expected ones
    (outputs carry only the last four digits, by design).
    """
    truth: dict[str, dict[str, str]] = {}
    for row in _read(truth_path):
        truth.setdefault(row["request_id"], row)
    disclosed = {row["request_id"]: row for row in _read(out_dir / "disclosed.csv")}
    rejected: dict[str, str] = {}
    for row in _read(out_dir / "rejected.csv"):
        # A repeat of an id is rejected as a duplicate; the truth row of that id is about its first occurrence.
        if row["reason_codes"] != "DUPLICATE_REQUEST_ID":
            rejected.setdefault(row["request_id"], row["reason_codes"])
    wrong_by_case: Counter[str] = Counter()
    disclosures_by_case: Counter[str] = Counter()
    findable_by_case: Counter[str] = Counter()
    found_by_case: Counter[str] = Counter()
    correct = wrong = findable = invalid_total = invalid_caught = valid_rejected = 0
    for request_id, expected in truth.items():
        case = expected["case"]
        should_disclose = expected["expected_outcome"] == "DISCLOSED"
        if should_disclose:
            findable += 1
            findable_by_case[case] += 1
        if expected["expected_outcome"] == "REJECTED":
            invalid_total += 1
            wanted = set(filter(None, expected["expected_codes"].split(";")))
            got = set(rejected.get(request_id, "").split(";"))
            if wanted and wanted <= got:
                invalid_caught += 1
        elif request_id in rejected:
            valid_rejected += 1
        disclosure = disclosed.get(request_id)
        if disclosure is None:
            continue
        disclosures_by_case[case] += 1
        right = (
            should_disclose
            and disclosure["tin_last4"] == expected["expected_tin"][-4:]
            and disclosure["tax_year"] == expected["expected_tax_year"]
        )
        if right:
            correct += 1
            found_by_case[case] += 1
        else:
            wrong += 1
            wrong_by_case[case] += 1
    return EvaluationReport(
        requests=len(truth),
        disclosures=len(disclosed),
        correct_disclosures=correct,
        wrong_disclosures=wrong,
        findable=findable,
        invalid_total=invalid_total,
        invalid_caught=invalid_caught,
        valid_rejected=valid_rejected,
        wrong_by_case=dict(sorted(wrong_by_case.items())),
        disclosures_by_case=dict(sorted(disclosures_by_case.items())),
        findable_by_case=dict(sorted(findable_by_case.items())),
        found_by_case=dict(sorted(found_by_case.items())),
    )
