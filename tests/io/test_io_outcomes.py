"""Outcome writers: exact headers, routing, byte-stable output, no spreadsheet formulas."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from taxmatch.io.outcomes import (
    MANIFEST_FILENAME,
    OUTCOME_FILENAMES,
    OutcomeWriter,
    StagedOutcomesMissingError,
    publish_outcomes,
    sha256_file,
    spreadsheet_safe,
    staging_directory,
    write_manifest,
)
from taxmatch.records import Decision, Disclosure, Outcome, ReasonCode


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "\t", "\r"])
def test_spreadsheet_safe_neutralises_each_trigger(trigger: str) -> None:
    assert spreadsheet_safe(trigger + "SUM(A1)") == "'" + trigger + "SUM(A1)"


@pytest.mark.parametrize("value", ["", "Maria", "12 Main St", "0.999731", "a=b", " =1", "'quoted"])
def test_spreadsheet_safe_leaves_ordinary_values(value: str) -> None:
    assert spreadsheet_safe(value) == value


def disclosure(first_name: str = "Maria", probability: float = 0.99973149) -> Disclosure:
    return Disclosure(
        tin_last4="6789",
        first_name=first_name,
        middle_name="",
        last_name="Garcia Lopez",
        suffix="",
        street="12 Main St",
        unit="Apt 4",
        city="Springfield",
        state="IL",
        zip="62704",
        tax_year=2021,
        match_probability=probability,
        evidence="name=exact;address=exact;dob=exact",
        tin="123456789",
        phone="555-0100",
    )


DECISIONS = [
    Decision("r1", Outcome.DISCLOSED, disclosure=disclosure()),
    Decision(
        "r2",
        Outcome.REJECTED,
        (ReasonCode.INVALID_NAME, ReasonCode.INVALID_ZIP),
    ),
    Decision("r3", Outcome.NOT_MATCHED, (ReasonCode.AMBIGUOUS,)),
    Decision("line-7", Outcome.REJECTED, (ReasonCode.MALFORMED_RECORD,), detail="line 7: 18 fields, header has 16"),
    Decision("r5", Outcome.DISCLOSED, disclosure=disclosure("=cmd|' /C calc'!A0", 1.0)),
]


def write_all(out_dir: Path) -> dict[str, int]:
    with OutcomeWriter(out_dir) as writer:
        for decision in DECISIONS:
            writer.write(decision)
    return writer.counts


def test_headers_routing_and_counts(tmp_path: Path) -> None:
    counts = write_all(tmp_path)
    assert counts == {"disclosed": 2, "rejected": 2, "unmatched": 1}
    disclosed = (tmp_path / "disclosed.csv").read_text(encoding="utf-8").splitlines()
    assert disclosed[0] == (
        "request_id,tin_last4,first_name,middle_name,last_name,suffix,street,unit,city,state,zip,"
        "tax_year,match_probability,evidence"
    )
    assert disclosed[1] == (
        "r1,6789,Maria,,Garcia Lopez,,12 Main St,Apt 4,Springfield,IL,62704,2021,0.999731,"
        "name=exact;address=exact;dob=exact"
    )
    assert "123456789" not in (tmp_path / "disclosed.csv").read_text(encoding="utf-8")
    assert "555-0100" not in (tmp_path / "disclosed.csv").read_text(encoding="utf-8")
    assert (tmp_path / "rejected.csv").read_text(encoding="utf-8") == (
        "request_id,reason_codes,reasons\n"
        "r2,INVALID_NAME;INVALID_ZIP,name is a placeholder or has no letters; ZIP code does not exist\n"
        'line-7,MALFORMED_RECORD,"the record could not be read; line 7: 18 fields, header has 16"\n'
    )
    assert (tmp_path / "unmatched.csv").read_text(encoding="utf-8") == (
        "request_id,reason_codes,reasons\nr3,AMBIGUOUS,more than one taxpayer is plausible\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disclosed.csv", "rejected.csv", "unmatched.csv"]


def test_formula_name_lands_quoted_safe(tmp_path: Path) -> None:
    write_all(tmp_path)
    raw = (tmp_path / "disclosed.csv").read_bytes()
    assert b"\nr5,6789,'=cmd|' /C calc'!A0,,Garcia Lopez," in raw
    with (tmp_path / "disclosed.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[1]["first_name"] == "'=cmd|' /C calc'!A0"
    assert rows[1]["match_probability"] == "1.000000"
    assert not any(value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())


def test_byte_identical_across_runs(tmp_path: Path) -> None:
    write_all(tmp_path / "a")
    write_all(tmp_path / "b")
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes()
        assert not first.startswith(b"\xef\xbb\xbf") and b"\r\n" not in first


def test_failure_leaves_no_partial_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without a disclosure"), OutcomeWriter(tmp_path) as writer:
        writer.write(DECISIONS[1])
        writer.write(Decision("bad", Outcome.DISCLOSED))
    assert list(tmp_path.iterdir()) == []


def test_sha256_and_manifest_are_stable(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"x" * 3_000_000)
    assert sha256_file(data) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    manifest = {"counts": {"rejected": 1, "disclosed": 2}, "agency": "ICE", "as_of": "2025-06-01"}
    path = write_manifest(tmp_path / "out", manifest)
    text = path.read_text(encoding="utf-8")
    assert path.name == "manifest.json"
    assert text == (
        '{\n  "agency": "ICE",\n  "as_of": "2025-06-01",\n  "counts": {\n    "disclosed": 2,\n'
        '    "rejected": 1\n  }\n}\n'
    )
    assert json.loads(text) == manifest
    assert write_manifest(tmp_path / "out", dict(reversed(manifest.items()))).read_text(encoding="utf-8") == text


def tricky_decisions() -> list[Decision]:
    """Every trigger in every column (first cell, later cell, after an inner newline), quotes, commas, newlines."""
    texts = ["plain", "=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", 'say "hi", ok', "two\nlines", "a\n=b", "", "Müller"]
    decisions: list[Decision] = []
    for i, text in enumerate(texts * 2):
        other = texts[(i * 5 + 3) % len(texts)]
        fields = {
            "tin_last4": text, "first_name": other, "middle_name": text, "last_name": other, "suffix": text,
            "street": other, "unit": text, "city": other, "state": text, "zip": other, "tax_year": 2020 + i % 3,
            "match_probability": 0.9990004 + i / 1e7, "evidence": text, "tin": other, "phone": text,
        }  # fmt: skip
        decisions.append(Decision(text + str(i), Outcome.DISCLOSED, disclosure=Disclosure(**fields)))  # type: ignore[arg-type]
        codes = (ReasonCode.INVALID_NAME, ReasonCode.INVALID_ZIP) if i % 2 else (ReasonCode.AMBIGUOUS,)
        decisions.append(Decision(other, Outcome.REJECTED if i % 2 else Outcome.NOT_MATCHED, codes, detail=text))
    decisions.append(Decision("=first", Outcome.REJECTED, (ReasonCode.MALFORMED_RECORD,)))
    return decisions


@pytest.mark.parametrize("extra", [(), ("tin", "phone")])
@pytest.mark.parametrize("order", ["as is", "reversed", "one outcome"])
def test_write_many_writes_the_bytes_of_write(tmp_path: Path, extra: tuple[str, ...], order: str) -> None:
    decisions = tricky_decisions()
    if order == "reversed":
        decisions.reverse()
    elif order == "one outcome":
        decisions = [decision for decision in decisions if decision.outcome is Outcome.NOT_MATCHED]
    with OutcomeWriter(tmp_path / "one", extra) as writer:
        for decision in decisions:
            writer.write(decision)
    with OutcomeWriter(tmp_path / "many", extra) as many:
        many.write_many(decisions[:5])
        many.write_many([])
        many.write_many(decisions[5:])
    assert many.counts == writer.counts
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        assert (tmp_path / "many" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    cells = []
    for name in ("disclosed.csv", "rejected.csv", "unmatched.csv"):
        with (tmp_path / "many" / name).open(newline="", encoding="utf-8") as handle:
            cells += [cell for row in csv.reader(handle) for cell in row]
    assert "'=1+1" in cells and "'\tx" in cells and "a\n=b" in cells
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)


def test_write_many_checks_every_decision_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without a disclosure"), OutcomeWriter(tmp_path) as writer:
        writer.write_many([DECISIONS[1], Decision("bad", Outcome.DISCLOSED)])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="not a valid Outcome"), OutcomeWriter(tmp_path) as writer:
        writer.write_many([Decision("odd", "MAYBE")])  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# ---- putting a batch's staged files in place (issue 13, finding 4) ---------------------------------


def staged_batch(staging: Path, text: str) -> dict[str, Any]:
    """Staged outcome files and their manifest, as `run_batch` leaves them before its ledger commit."""
    staging.mkdir(parents=True)
    for name in OUTCOME_FILENAMES.values():
        (staging / name).write_text(f"{name}\n{text}\n", encoding="utf-8")
    manifest = {"batch_id": "b-1", "outputs": {n: sha256_file(staging / n) for n in OUTCOME_FILENAMES.values()}}
    write_manifest(staging, manifest)
    return manifest


def test_publish_renames_the_staging_directory_onto_a_new_target(tmp_path: Path) -> None:
    target = tmp_path / "batch"
    staging = staging_directory(target, "b-1")
    assert staging.parent == tmp_path and staging.name.startswith(".")
    manifest = staged_batch(staging, "new")
    publish_outcomes(staging, target, manifest)
    assert not staging.exists()
    assert sorted(path.name for path in target.iterdir()) == sorted([*OUTCOME_FILENAMES.values(), MANIFEST_FILENAME])
    publish_outcomes(staging, target, manifest)  # again: already in place, nothing to do


def test_publish_into_a_used_directory_puts_the_manifest_last_and_can_be_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out"
    old = staged_batch(target, "old")
    staging = staging_directory(target, "b-2")
    new = {**staged_batch(staging, "new"), "batch_id": "b-2"}
    write_manifest(staging, new)
    real_replace = os.replace
    moved: list[str] = []

    def dies_after_one(source: Any, destination: Any) -> None:
        if moved:
            raise OSError("killed")
        moved.append(Path(destination).name)
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", dies_after_one)
    with pytest.raises(OSError, match="killed"):
        publish_outcomes(staging, target, new)
    # Half way: the old manifest is gone (it no longer describes the files), the new one not yet there.
    assert moved == ["disclosed.csv"] and not (target / MANIFEST_FILENAME).exists()
    monkeypatch.setattr(os, "replace", real_replace)
    publish_outcomes(staging, target, new)
    assert json.loads((target / MANIFEST_FILENAME).read_text(encoding="utf-8"))["batch_id"] == "b-2"
    for name, digest in new["outputs"].items():
        assert sha256_file(target / name) == digest != old["outputs"][name]
    assert not staging.exists()


def test_publish_names_what_is_neither_staged_nor_in_place(tmp_path: Path) -> None:
    target = tmp_path / "out"
    staging = staging_directory(target, "b-3")
    manifest = staged_batch(staging, "new")
    (staging / "rejected.csv").unlink()
    with pytest.raises(StagedOutcomesMissingError, match=r"rejected\.csv"):
        publish_outcomes(staging, target, manifest)
    assert not (target / "disclosed.csv").exists(), "nothing is put in place when something is missing"
