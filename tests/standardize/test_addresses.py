from __future__ import annotations

import time

import pytest

from taxmatch.records import Address
from taxmatch.standardize.addresses import (
    StandardAddress,
    normalize_state,
    normalize_unit,
    normalize_zip,
    standardize_address,
    zip_exists,
    zip_state,
)


def _street(line: str) -> StandardAddress:
    return standardize_address(Address(street=line))


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("123 N Main St", "123 N MAIN ST"),
        ("123 North Main Street", "123 N MAIN ST"),
        ("123 n. main st.", "123 N MAIN ST"),
        ("1600 Pennsylvania Avenue Northwest", "1600 PENNSYLVANIA AVE NW"),
        ("55 Sunset Boulevard", "55 SUNSET BLVD"),
        ("9 Elm Ct", "9 ELM CT"),
        ("123 Fifth Avenue", "123 5TH AVE"),
        ("4 Calle José Núñez", "4 CALLE JOSE NUNEZ"),
        ("100 West North Avenue", "100 W NORTH AVE"),
        ("123 N St", "123 N ST"),
        ("PO Box 77", "PO BOX 77"),
        ("P.O. Box 77", "PO BOX 77"),
        ("post office box 77", "PO BOX 77"),
    ],
)
def test_street_key(line: str, key: str) -> None:
    standard = _street(line)
    assert standard.parsed_ok
    assert standard.street_key == key


def test_components_are_separate() -> None:
    standard = _street("1600 Pennsylvania Avenue NW")
    assert (standard.house_number, standard.pre_directional, standard.street_name) == ("1600", "", "PENNSYLVANIA")
    assert (standard.street_suffix, standard.post_directional) == ("AVE", "NW")
    assert _street("123 N Main St").pre_directional == "N"


@pytest.mark.parametrize("unit", ["APT 4B", "#4B", "Unit 4B", "apt. 4-b", "Suite 4B", "4B"])
def test_unit_forms_agree(unit: str) -> None:
    assert normalize_unit(unit) == "4B"
    assert standardize_address(Address(street="1 Main St", unit=unit)).unit == "4B"


def test_unit_inside_street_line() -> None:
    assert _street("123 Main St Apt 4B").unit == "4B"
    assert _street("123 Main St #4B").unit == "4B"
    # The unit field wins over the line.
    assert standardize_address(Address(street="123 Main St Apt 4B", unit="7")).unit == "7"


def test_whole_address_in_street_line() -> None:
    standard = _street("123 N Main St, Springfield, IL 62701-1234")
    assert standard.street_key == "123 N MAIN ST"
    assert (standard.city, standard.state, standard.zip5, standard.zip4) == ("SPRINGFIELD", "IL", "62701", "1234")


def test_fields_win_over_street_line() -> None:
    standard = standardize_address(Address("123 Main St, Springfield, IL 62701", None, "Chicago", "IL", "60601"))
    assert (standard.city, standard.zip5) == ("CHICAGO", "60601")


@pytest.mark.parametrize("line", ["Don't Care 12345", "Unknown", "Main Street", "", "123"])
def test_not_parsed(line: str) -> None:
    assert not _street(line).parsed_ok


def test_city_state_zip_normalized() -> None:
    standard = standardize_address(Address("1 Main St", None, "  st. louis ", "Missouri", "63101"))
    assert (standard.city, standard.state, standard.zip5) == ("ST LOUIS", "MO", "63101")


def test_normalize_state() -> None:
    assert normalize_state("il") == "IL"
    assert normalize_state("New York") == "NY"
    assert normalize_state("district of columbia") == "DC"
    assert normalize_state("PR") == "PR"
    assert normalize_state("ZZ") is None
    assert normalize_state("") is None


def test_normalize_zip() -> None:
    assert normalize_zip("62701") == ("62701", "")
    assert normalize_zip("62701-1234") == ("62701", "1234")
    assert normalize_zip("627011234") == ("62701", "1234")
    assert normalize_zip("6270") is None
    assert normalize_zip("62701-") is None


def test_zip_table() -> None:
    assert zip_exists("62701")
    assert zip_state("62701") == {"IL"}
    assert zip_state("10001") == {"NY"}
    assert not zip_exists("00000")
    assert not zip_exists("99999")
    assert zip_state("00000") == frozenset()


def test_zip_lookup_is_fast() -> None:
    zip_exists("62701")
    start = time.perf_counter()
    for _ in range(10_000):
        zip_state("62701")
    assert time.perf_counter() - start < 0.5


def test_repeated_label_falls_back_to_regex() -> None:
    # usaddress raises RepeatedLabelError on a second unit; the line still yields its street.
    standard = _street("123 Main St Apt 4 Apt 5")
    assert standard.parsed_ok
    assert standard.street_key == "123 MAIN ST"
    assert standard.unit == "4APT5"
