from __future__ import annotations

import dataclasses
import itertools

import pytest

from taxmatch.records import Address, ReasonCode
from taxmatch.settings import Policy
from taxmatch.standardize.addresses import (
    fold,
    normalize_state,
    normalize_zip,
    standardize_address,
    zip_exists,
    zip_state,
)
from taxmatch.validate.addresses import _is_nonsense, _placeholders, _words_nonsense, check_address

from conftest import Codes

R = ReasonCode


def test_missing_address(codes: Codes) -> None:
    assert codes(street="", unit="", city="", state="", zip="") == [R.MISSING_ADDRESS]
    # A unit alone is no address either.
    assert codes(street=None, city=None, state=None, zip=None) == [R.MISSING_ADDRESS]


def test_city_alone_is_not_missing_but_incomplete(codes: Codes) -> None:
    assert codes(street="", state="", zip="") == [R.INCOMPLETE_ADDRESS]


@pytest.mark.parametrize(
    "street",
    [
        "Don't Care 12345",
        "Don't Care",
        "Don't Care Street 12345",
        "Unknown St",
        "DONT CARE",
        "Unknown",
        "unknown 123",
        "N/A",
        "none",
        "xxx",
        "XXXX",
        "123",
        "12345",
        "123 456",
        "---",
        "123 Unknown St",
        "Test",
        "No fixed address",
    ],
)
def test_placeholder_or_nonsense_street_is_invalid(codes: Codes, street: str) -> None:
    assert codes(street=street) == [R.INVALID_ADDRESS]


@pytest.mark.parametrize("street", ["Main Street", "North Avenue", "Apt 4B", "PO Box", "PO Box 0", "PO Box XXX"])
def test_street_without_house_number_is_incomplete(codes: Codes, street: str) -> None:
    assert codes(street=street) == [R.INCOMPLETE_ADDRESS]


def test_no_street_line_is_incomplete(codes: Codes) -> None:
    assert codes(street="") == [R.INCOMPLETE_ADDRESS]


@pytest.mark.parametrize(
    "street",
    [
        "123 N Main St",
        "123 North Main Street",
        "123 Main",
        "PO Box 77",
        "P.O. Box 77",
        "1600 Pennsylvania Avenue NW",
        "4 Calle José Núñez",
        "123-A Elm St",
        "123 N St",
        "100 Unknown-Creek Rd",  # a real word next to a placeholder-like one is still an address
        "123 Main St Apt 4B",
        "Rural Route 2 Box 5",
    ],
)
def test_near_miss_streets_are_valid(codes: Codes, street: str) -> None:
    assert codes(street=street) == []


def test_whole_address_in_street_line(codes: Codes) -> None:
    assert codes(street="123 N Main St, Springfield, IL 62701", unit="", city="", state="", zip="") == []


def test_zip_or_city_and_state_required(codes: Codes) -> None:
    assert codes(zip="") == []  # city + state suffice
    assert codes(city="", state="") == []  # a ZIP suffices
    assert codes(city="", zip="") == [R.INCOMPLETE_ADDRESS]
    assert codes(state="", zip="") == [R.INCOMPLETE_ADDRESS]


@pytest.mark.parametrize("zip_code", ["00000", "99999", "1234", "123456", "6270A", "62701-12", "ABCDE"])
def test_invalid_zip(codes: Codes, zip_code: str) -> None:
    assert codes(zip=zip_code) == [R.INVALID_ZIP]


@pytest.mark.parametrize("zip_code", ["62701", "62701-1234", "627011234", " 62701 "])
def test_valid_zip_forms(codes: Codes, zip_code: str) -> None:
    assert codes(zip=zip_code) == []


def test_zip_of_another_state(codes: Codes) -> None:
    assert codes(zip="10001") == [R.ZIP_STATE_MISMATCH]  # Manhattan, NY
    assert codes(zip="10001", state="NY", city="New York") == []


def test_full_state_name_is_accepted(codes: Codes) -> None:
    assert codes(state="Illinois") == []
    assert codes(state="illinois", zip="10001") == [R.ZIP_STATE_MISMATCH]


@pytest.mark.parametrize("state", ["ZZ", "Illinoise", "12", "XX"])
def test_invalid_state(codes: Codes, state: str) -> None:
    assert codes(state=state) == [R.INVALID_ADDRESS]


@pytest.mark.parametrize("city", ["Unknown", "12345", "N/A"])
def test_placeholder_city(codes: Codes, city: str) -> None:
    assert codes(city=city) == [R.INVALID_ADDRESS]


def test_territories_and_military(codes: Codes) -> None:
    assert codes(street="1 Calle Luna", city="San Juan", state="PR", zip="00901") == []
    assert codes(street="PSC 1234 Box 5678", city="APO", state="AE", zip="09001") == []


# --- address_codes reads the street parse directly; it must agree with the rule stated on
# standardize_address's output (the pre-optimization formulation), field quirks included. ---


def _reference_codes(address: Address, policy: Policy) -> list[ReasonCode]:
    street = (address.street or "").strip()
    city = (address.city or "").strip()
    state = (address.state or "").strip()
    zip_text = (address.zip or "").strip()
    if not (street or city or state or zip_text):
        return [ReasonCode.MISSING_ADDRESS]
    standard = standardize_address(address)
    placeholders = _placeholders(policy.name_placeholders)
    if not street:
        codes = [ReasonCode.INCOMPLETE_ADDRESS]
    elif _words_nonsense(fold(street), placeholders) or (
        standard.street_name and _is_nonsense(standard.street_name, placeholders)
    ):
        codes = [ReasonCode.INVALID_ADDRESS]
    elif not standard.parsed_ok:
        codes = [ReasonCode.INCOMPLETE_ADDRESS]
    else:
        codes = []
    has_city = bool(city or standard.city)
    if city and _is_nonsense(city, placeholders):
        codes.append(ReasonCode.INVALID_ADDRESS)
    state_code = normalize_state(state or standard.state)
    has_state = bool(state or standard.state)
    if has_state and state_code is None:
        codes.append(ReasonCode.INVALID_ADDRESS)
    if zip_text:
        parts = normalize_zip(zip_text)
        zip5 = parts[0] if parts else ""
    else:
        zip5 = standard.zip5
    has_zip = bool(zip_text or zip5)
    if has_zip and not (zip5 and zip_exists(zip5)):
        codes.append(ReasonCode.INVALID_ZIP)
    elif zip5 and state_code and state_code not in zip_state(zip5):
        codes.append(ReasonCode.ZIP_STATE_MISMATCH)
    if not has_zip and not (has_city and has_state):
        codes.append(ReasonCode.INCOMPLETE_ADDRESS)
    return codes


_STREETS = (None, "", "  ", "123 N Main St", "Don't Care 12345", "Main Street", "xxx", "123 Unknown St",
            "123 N Main St, Springfield, IL 62701", "PO Box 77", "José Núñez Calle 5", "123 N Main St Wash DC 20001",
            "Unknown Street 12345", "12 Rue Ünknown")  # fmt: skip
_CITIES = (None, "", "  ", "Springfield", "Unknown", "123")
_STATES = (None, "", "  ", "IL", "Illinois", "ZZ", " il ")
_ZIPS = (None, "", "  ", "62701", "62701-1234", "99999", "6270", "20001", "00000")


def test_address_codes_agree_with_the_standardize_address_formulation(policy: Policy) -> None:
    for street, city, state, zip_code in itertools.product(_STREETS, _CITIES, _STATES, _ZIPS):
        address = Address(street=street, city=city, state=state, zip=zip_code)
        assert check_address(address, policy) == _reference_codes(address, policy), address


# Lines whose verdict address_codes may give without parsing them (see street_name_words), next to
# ones it must parse; the placeholders below make word combinations nonsense ("ST" + "MAIN").
_FRAGMENTS = ("MAIN", "N", "A", "ST", "STREET", "UN", "KNOWN", "X", "XX", "FIRST", "FIFTH", "APT", "RD", "NA",
              "O'BRIEN", "#", "&", "-", "BOX", "PO", "NONE", "TEST", "AVE", "4B", "Sé", "DON'T", "CARE",
              "n.")  # fmt: skip


def _random_streets(count: int) -> list[str]:
    import random

    pick = random.Random(7)
    streets = [
        "12 X XX APT",
        "12 XX XX APT",
        "12 FIFTH APT 4",
        "12 XX X RD APT 4",
        "12 N NN ST APT",
        "12 FIFTH APT",
        "12 ST MAIN APT",
        "12 MAIN ST",
    ]
    for _ in range(count):
        words = [pick.choice(_FRAGMENTS) for _ in range(pick.randint(1, 4))]
        number = pick.choice(["1", "12", "845", "1000", "62701", " 7 ", "12.5", ""])
        streets.append(f"{number} {' '.join(words)}" if number else " ".join(words))
    return streets


@pytest.mark.parametrize("placeholders", [frozenset(), frozenset({"ST MAIN", "N A X", "XX", "5TH", "NN", "OBRIEN ST"})])
def test_unparsed_street_verdicts_agree_with_the_parse(placeholders: frozenset[str]) -> None:
    policy = dataclasses.replace(Policy.default(), name_placeholders=Policy.default().name_placeholders | placeholders)
    for street in _random_streets(1500):
        for city, state, zip_code in (("Springfield", "IL", "62701"), ("", "IL", "62701"), ("Springfield", "", "")):
            address = Address(street=street, city=city, state=state, zip=zip_code)
            assert check_address(address, policy) == _reference_codes(address, policy), address
