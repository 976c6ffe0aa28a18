from __future__ import annotations

import pytest

from taxmatch.records import ReasonCode

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
