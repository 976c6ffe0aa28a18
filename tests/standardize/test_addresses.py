from __future__ import annotations

import dataclasses
import time

import pycrfsuite
import pytest
import usaddress
import zipcodes

from taxmatch.records import Address
from taxmatch.standardize import addresses as _addresses
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


# --- The memoized usaddress tagging must give usaddress's own answer, line for line. ---
_AWKWARD_LINES = (
    "123 N MAIN ST",
    "845 N MAIN ST",
    "1000 N MAIN ST",
    "7 NORTH MAIN STREET APT 4B",
    "123 MAIN ST APT 4 UNIT 5",
    "PO BOX 77",
    "P O BOX 12",
    "POB 12",
    "123 N MAIN ST, SPRINGFIELD, IL 62701",
    "123 N MAIN ST SPRINGFIELD IL 62701-1234",
    "MAIN STREET",
    "DON'T CARE 12345",
    "12345",
    "123 & 125 OAK AVE",
    "123 OAK AVE # 4",
    "123 1/2 ELM ST",
    "(REAR) 44 KINGSTON RD",
    "BROADWAY AND 5TH AVE",
    "123 ZZYZX QUUXLY BLVD",
    "123 FLUBBERWICK BLVD",
    "9 WEST 57TH ST FL 2",
    "RR 2 BOX 152",
    "",
)


@pytest.mark.parametrize("line", _AWKWARD_LINES)
def test_memoized_tag_is_usaddress_tag(line: str) -> None:
    # Twice: the second call answers from the label cache.
    for _ in range(2):
        try:
            expected: dict[str, str] | str = dict(usaddress.tag(line)[0])
        except usaddress.RepeatedLabelError:
            expected = "RepeatedLabelError"
        try:
            got: dict[str, str] | str = _addresses._tag(line)
        except usaddress.RepeatedLabelError:
            got = "RepeatedLabelError"
        assert got == expected


@pytest.mark.parametrize("line", [line for line in _AWKWARD_LINES if line])
def test_flat_crf_items_are_usaddress_features(line: str) -> None:
    # Same CRFsuite attributes, values and order as pycrfsuite makes of tokens2features' dicts.
    tokens = usaddress.tokenize(line)
    assert _addresses._TOKEN_RE.findall(line) == tokens
    expected = pycrfsuite.ItemSequence(usaddress.tokens2features(tokens)).items()
    flat = _addresses._crf_items(tokens)
    got = pycrfsuite.ItemSequence(flat).items()
    assert [list(item.items()) for item in got] == [list(item.items()) for item in expected]


def test_model_words_are_read_from_the_model() -> None:
    words = _addresses._model_words()
    assert words is not None and "main" in words and len(words) > 100


def test_unknown_words_share_a_cache_key_known_words_do_not() -> None:
    unknown = (_addresses._token_key("ZZYZXQ"), _addresses._token_key("QZZYXZ"))
    assert unknown[0] == unknown[1]
    assert _addresses._token_key("MAIN") != _addresses._token_key("OAK")


@pytest.mark.parametrize(
    "lines",
    [
        ("123 N MAIN ST", "845 N MAIN ST", "100 N MAIN ST"),
        ("12 OAK AVE APT 4B", "98 OAK AVE APT 4B"),
        ("123 MAIN ST APT 4 UNIT 5", "456 MAIN ST APT 4 UNIT 5"),
        ("12345 SPRINGFIELD IL", "54321 SPRINGFIELD IL"),
        ("1 MAIN", "2 MAIN"),
        ("62701 N MAIN ST, SPRINGFIELD, IL 62701", "62702 N MAIN ST, SPRINGFIELD, IL 62701"),
        ("PO BOX 1258", "PO BOX 3456", "PO BOX 1000", "PO BOX 0000", "PO BOX 0001", "PO BOX 10"),
        ("P O BOX 12", "P O BOX 98", "P O BOX 00"),
        ("RR 2 BOX 152", "RR 2 BOX 153", "RR 2 BOX 000"),
        ("MAIN ST 12", "MAIN ST 34", "MAIN ST 0"),
        ("SPRINGFIELD IL 62701", "SPRINGFIELD IL 62702"),
        ("123 MAIN ST APT 4", "123 MAIN ST APT 5", "9 MAIN ST APT 5"),
    ],
)
def test_house_number_templates_parse_as_a_fresh_parse(lines: tuple[str, ...]) -> None:
    # Lines differing only in the house (or box) number may reuse a template; the answer must be
    # the uncached one, and a shared shape must be that answer apart from the number.
    for line in lines:
        _addresses.parse_street.cache_clear()
        fresh = _addresses._parse_street_line(line)[0]
        assert _addresses.parse_street(line) == fresh
        shape, shared = _addresses.parse_street_shape(line)
        if shared:
            assert dataclasses.replace(shape, house_number=fresh.house_number, po_box=fresh.po_box) == fresh


def test_house_and_box_numbers_share_shapes() -> None:
    assert _addresses.street_shape_key("PO BOX 1258") == _addresses.street_shape_key("PO BOX 3456")
    assert _addresses.street_shape_key("PO BOX 1258") != _addresses.street_shape_key("PO BOX 0000")
    assert _addresses.street_shape_key("12 OAK ST") == _addresses.street_shape_key("98 OAK ST")
    assert _addresses.street_shape_key("OAK ST") is None
    for line in ("PO BOX 1258", "PO BOX 3456", "12 OAK ST", "98 OAK ST"):
        assert _addresses.parse_street_shape(line)[1]


# --- The ZIP table file is zipcodes' own table, and is not trusted for another zipcodes. ---


def test_zip_table_file_is_the_zipcodes_table() -> None:
    source, table = _addresses._ZipTable.from_text(_addresses._ZIP_TABLE_FILE.read_text(encoding="ascii"))
    assert source == _addresses._zipcodes_source()
    assert table == _addresses._zip_table_from_zipcodes()
    expected: dict[str, set[str]] = {}
    for entry in zipcodes.list_all():
        expected.setdefault(entry["zip_code"], set()).add(entry["state"])
    assert sorted(table.entries()) == sorted((zip5, state) for zip5, states in expected.items() for state in states)
    for number in range(100_000):
        zip5 = f"{number:05d}"
        assert zip_state(zip5) == frozenset(expected.get(zip5, ())), zip5


@pytest.mark.parametrize("zip5", ["", "1234", "123456", "١٢٣٤٥", "6270A", "-1234", " 6270"])
def test_zip_table_answers_only_five_ascii_digits(zip5: str) -> None:
    assert zip_state(zip5) == frozenset()
    assert not zip_exists(zip5)


def test_zip_table_of_another_zipcodes_version_is_built_from_zipcodes(monkeypatch: pytest.MonkeyPatch) -> None:
    _addresses._zip_table.cache_clear()
    monkeypatch.setattr(_addresses, "_zipcodes_source", lambda: "zipcodes 0.0-other")
    try:
        assert _addresses._zip_table() == _addresses._zip_table_from_zipcodes()
        assert _addresses._zip_table() is not None and zip_state("62701") == {"IL"}
    finally:
        _addresses._zip_table.cache_clear()


def test_zip_table_text_round_trips() -> None:
    table = _addresses._ZipTable.from_entries([("00501", "NY"), ("00502", "NY"), ("00601", "PR"), ("99950", "AK")])
    assert _addresses._ZipTable.from_text(table.to_text("test 1")) == ("test 1", table)
    assert table.states_of("00502") == {"NY"} and table.states_of("00600") == frozenset()
    with pytest.raises(ValueError):
        _addresses._ZipTable.from_text("source x\nruns 0\nnot a bitmap\n")


# --- street_name_words promises what a parse gives, without parsing. ---

_WORDS = ("MAIN", "N", "A", "ST", "STREET", "UN", "KNOWN", "X", "XX", "FIRST", "FIFTH", "APT", "RD", "OF", "NA",
          "O'BRIEN", "#", "&", "-", ",", "BOX", "PO", "NONE", "TEST", "AVE", "SE", "UNIT")  # fmt: skip


def _lines() -> list[str]:
    import random

    pick = random.Random(20261125)
    lines = [line for line in _AWKWARD_LINES if line]
    for _ in range(1500):
        words = [pick.choice(_WORDS) for _ in range(pick.randint(1, 5))]
        lines.append(f"{pick.choice(['1', '12', '845', '1000', '62701'])} {' '.join(words)}")
    return lines


def test_street_name_words_bound_the_parse() -> None:
    bounded = 0
    for line in _lines():
        words = _addresses.street_name_words(line)
        if words is None:
            continue
        bounded += 1
        parsed = _addresses._parse_street_line(line)[0]
        assert parsed.parsed_ok, line
        name = parsed.street_name.split()
        if parsed.street_name in _addresses.ORDINALS.values() and not set(name) <= set(words):
            assert any(_addresses.ORDINALS.get(word) == parsed.street_name for word in words), line
            continue
        remaining = list(words)
        for word in name:
            assert word in remaining, (line, parsed.street_name, words)
            remaining.remove(word)
    assert bounded > 500


@pytest.mark.parametrize("line", ["MAIN ST", "12 5TH AVE", "12 MAIN ST APT 4", "PO BOX 12", "12 ÜBER ST", "12 #"])
def test_street_name_words_refuse_what_they_cannot_bound(line: str) -> None:
    assert _addresses.street_name_words(line) is None


def test_house_number_class_is_the_token_features() -> None:
    # house_number_class skips usaddress for digit strings of a known (length, trailing zeros).
    import random

    pick = random.Random(5)
    numbers = [str(n) for n in range(10_000)] + [f"{n:04d}" for n in range(1000)]
    numbers += ["".join(pick.choice("0123456789") for _ in range(pick.randint(5, 12))) for _ in range(2000)]
    for number in numbers:
        assert _addresses.house_number_class(number) == _addresses._token_key(number), number
    for a, b in (("12", "98"), ("100", "200"), ("1", "7")):
        assert _addresses.house_number_class(a) == _addresses.house_number_class(b)
    assert _addresses.house_number_class("12") != _addresses.house_number_class("10")
    assert _addresses.house_number_class("12A") == _addresses._token_key("12A")
