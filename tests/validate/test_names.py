from __future__ import annotations

import dataclasses

import pytest

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy
from taxmatch.validate import validate_request

from conftest import AS_OF, VALID, Codes

R = ReasonCode


@pytest.mark.parametrize(("first", "last"), [("", "Garcia"), ("Maria", ""), ("  ", "Garcia"), (None, None)])
def test_missing_name(codes: Codes, first: str | None, last: str | None) -> None:
    assert R.MISSING_NAME in codes(first_name=first, last_name=last)


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("UNKNOWN", "Garcia"),
        ("Maria", "n/a"),
        ("FNU", "Garcia"),
        ("Maria", "LNU"),
        ("John", "Doe"),
        ("JANE", "DOE"),
        ("Don't", "Care"),
        ("Maria", "Don't Care"),
        ("Mar1a", "Garcia"),
        ("Maria", "Garcia2"),
        ("Maria", "---"),
        ("Maria", "Garcia@Lopez"),
        ("x x x", "Garcia"),
    ],
)
def test_invalid_name(codes: Codes, first: str, last: str) -> None:
    assert codes(first_name=first, last_name=last) == [R.INVALID_NAME]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("José", "Núñez"),
        ("J", "Garcia"),  # an initial is a name; the matcher weighs it
        ("Mary-Ann", "O'Brien"),
        ("Mary Ann", "St. John"),
        ("Maria", "D’Angelo"),
        ("李", "小龙"),
        ("Johnny", "Doe"),  # only the placeholder pair is rejected
        ("John", "Doerr"),
    ],
)
def test_near_miss_names_are_valid(codes: Codes, first: str, last: str) -> None:
    assert codes(first_name=first, last_name=last) == []


@pytest.mark.parametrize("middle", ["Elena", "E.", "E", "NMN", "Ana María", None, ""])
def test_valid_middle_names(codes: Codes, middle: str | None) -> None:
    assert codes(middle_name=middle) == []


@pytest.mark.parametrize("middle", ["3", "UNKNOWN", "E#"])
def test_invalid_middle_names(codes: Codes, middle: str) -> None:
    assert codes(middle_name=middle) == [R.INVALID_NAME]


@pytest.mark.parametrize("suffix", ["Jr.", "JR", "Sr", "III", "iv", "2nd", "Esq."])
def test_valid_suffixes(codes: Codes, suffix: str) -> None:
    assert codes(suffix=suffix) == []


@pytest.mark.parametrize("suffix", ["Junior Senior", "XYZ", "99", "UNKNOWN"])
def test_invalid_suffixes(codes: Codes, suffix: str) -> None:
    assert codes(suffix=suffix) == [R.INVALID_NAME]


def test_first_and_last_name_together_a_placeholder(policy: Policy) -> None:
    # "John" and "Doe" are fine alone; together they are the placeholder JOHNDOE (also in any script).
    for first, last in (("John", "Doe"), ("JOHN", "DOE"), ("Jöhn", "Doe"), ("John-", "Doe"), (" john ", " doe")):
        codes = validate_request(dataclasses.replace(VALID, first_name=first, last_name=last), policy, AS_OF)
        assert ReasonCode.INVALID_NAME in codes, (first, last)
    assert validate_request(dataclasses.replace(VALID, first_name="John", last_name="Does"), policy, AS_OF) == []


@pytest.mark.parametrize("given", ["Na", "Li", "Ng", "Yu", "O", "NA", "Ana"])
def test_short_real_given_names_are_not_placeholders(codes: Codes, given: str) -> None:
    # N/A is a placeholder because of its slash; Na (a Chinese given name) is a name.
    assert codes(first_name=given, last_name="Wang") == []


@pytest.mark.parametrize("written", ["N/A", "n/a", " N/A "])
def test_not_applicable_is_a_placeholder(codes: Codes, written: str) -> None:
    assert R.INVALID_NAME in codes(first_name=written, last_name="Wang")


def test_no_name_of_the_synthetic_populations_is_a_placeholder(codes: Codes) -> None:
    from taxmatch.synth import names as synth_names

    tables = [value for name, value in vars(synth_names).items() if name.endswith(("SURNAMES", "MALE", "FEMALE"))]
    names = {entry for table in tables if isinstance(table, tuple) for entry in table if isinstance(entry, str)}
    assert len(names) > 200, "the name tables should be found"
    rejected = sorted(name for name in names if codes(first_name=name, last_name=name) != [])
    assert rejected == []
