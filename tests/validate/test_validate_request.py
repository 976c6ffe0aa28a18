from __future__ import annotations

import dataclasses
import random
import string
from pathlib import Path
from typing import Any

from taxmatch.records import REJECTION_CODES, ReasonCode, RequestRecord
from taxmatch.settings import Policy
from taxmatch.validate import validate_request

from conftest import AS_OF, VALID, Codes

R = ReasonCode


def test_sample_request_is_valid(codes: Codes) -> None:
    assert codes() == []


def test_all_codes_reported_in_contract_order(policy: Policy) -> None:
    empty = RequestRecord(request_id="x")
    assert validate_request(empty, policy, AS_OF) == [
        R.MISSING_NAME,
        R.MISSING_ADDRESS,
        R.MISSING_REMOVAL_ORDER,
        R.MISSING_STATUTE,
        R.MISSING_TAX_PERIOD,
    ]


def test_many_faults_at_once_are_deduplicated_and_sorted(codes: Codes) -> None:
    result = codes(
        first_name="UNKNOWN",
        last_name="123",
        zip="99999",
        tin="000-00-0000",
        dob="1800-01-01",
        statute="8 U.S.C. 1227",
        tax_years="2026",
    )
    assert result == [
        R.INVALID_NAME,
        R.INVALID_ZIP,
        R.STATUTE_NOT_PERMITTED,
        R.INVALID_TAX_PERIOD,
        R.INVALID_DOB,
        R.INVALID_TIN,
    ]


def test_never_produces_batch_level_codes(codes: Codes) -> None:
    result = codes(request_id=None)
    assert ReasonCode.DUPLICATE_REQUEST_ID not in result
    assert ReasonCode.MALFORMED_RECORD not in result


def test_non_string_values_do_not_raise(policy: Policy) -> None:
    odd = dataclasses.replace(VALID, zip=62701, tax_years=2024, tin=123456788)  # type: ignore[arg-type]
    assert validate_request(odd, policy, AS_OF) == []


def test_random_garbage_never_raises_and_only_rejection_codes(policy: Policy) -> None:
    rng = random.Random(20261125)
    alphabet = string.printable + "§éñ李—–’\u0301\u00a0\x00"
    fields = [f.name for f in dataclasses.fields(RequestRecord) if f.name not in ("prior_addresses", "source_line")]
    allowed = set(REJECTION_CODES) - {R.DUPLICATE_REQUEST_ID, R.MALFORMED_RECORD}
    for _ in range(300):
        values: dict[str, Any] = {
            name: "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for name in fields
        }
        result = validate_request(RequestRecord(**values), policy, AS_OF)
        assert set(result) <= allowed
        assert result == sorted(set(result), key=list(ReasonCode).index)


def test_validate_requests_is_validate_request_on_plain_data(policy: Policy) -> None:
    import pickle

    from taxmatch.validate import validate_requests

    pick = random.Random(3)
    requests = [VALID, RequestRecord(request_id="x")]
    for index in range(300):
        changes = {name: pick.choice(["", None, " x ", "Unknown", "12", "2024-01-15"]) for name in ("first_name",
                   "street", "zip", "statute", "dob", "a_number") if pick.random() < 0.3}  # fmt: skip
        requests.append(dataclasses.replace(VALID, request_id=f"r{index}", **changes))
    # What a second process would receive and send back.
    chunk = pickle.loads(pickle.dumps((requests, policy, AS_OF)))
    verdicts = pickle.loads(pickle.dumps(validate_requests(*chunk)))
    assert verdicts == [tuple(validate_request(request, policy, AS_OF)) for request in requests]
    assert any(verdicts) and not all(verdicts)


def test_validate_file_gives_each_item_its_verdict(policy: Policy, tmp_path: Path) -> None:
    import concurrent.futures
    import csv

    from taxmatch.io.requests import read_requests
    from taxmatch.records import REQUEST_COLUMNS
    from taxmatch.validate import validate_file

    path = tmp_path / "requests.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUEST_COLUMNS)
        writer.writerow([getattr(VALID, column) or "" for column in REQUEST_COLUMNS])
        writer.writerow(["r2", "", "", "Garcia", *[""] * (len(REQUEST_COLUMNS) - 4)])
        writer.writerow(["r3", "too", "few"])
    expected = [
        tuple(validate_request(item, policy, AS_OF)) if isinstance(item, RequestRecord) else None
        for item in read_requests(path)
    ]
    assert expected[0] == () and expected[1] and expected[2] is None
    assert validate_file(path, policy, AS_OF) == expected
    # As the lead would run it: in another process.
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(validate_file, path, policy, AS_OF).result() == expected
