"""The name levels added for recall, in SQL and in their Python twins, on pairs chosen to sit at their edges."""

from __future__ import annotations

import duckdb
import pytest

from taxmatch.match.levels import (
    COMPARISON_SHAPE,
    COMPARISONS,
    GENDER_VARIANT,
    GIVEN_NAME_KEYED_APART,
    GIVEN_NAME_SPACED,
    GIVEN_NAME_TWO_KEYING_ERRORS,
    MIDDLE_IN_GIVEN,
    NICKNAME,
    PYTHON_LEVELS,
    SHORT_GIVEN_NAME_TYPO,
    _gender_variant,
    _given_name_keyed_apart,
    _given_name_same,
    _given_name_two_keying_errors,
    _middle_in_given,
    _one_keying_error,
    _one_keying_error_sql,
    _short_given_name_typo,
)
from taxmatch.match.model import comparison_shape, settings_creator
from taxmatch.standardize.names import given_name_forms, reference_given_names


def _sql(condition: str, **columns: str | bool | list[str] | None) -> bool:
    names = ", ".join(columns)
    placeholders = ", ".join("?" for _ in columns)
    found = duckdb.sql(
        f"SELECT coalesce(({condition}), false) FROM (SELECT {placeholders}) AS t({names})",
        params=list(columns.values()),
    ).fetchone()
    assert found is not None
    return bool(found[0])


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("SNITH", "SMITH", True),  # a neighbouring key
        ("MPORE", "MOORE", True),
        ("PAYEL", "PATEL", True),
        ("MQRIA", "MARIA", True),
        ("DABIS", "DAVIS", True),
        ("JSESICA", "JESSICA", True),  # two letters swapped
        ("LINDA", "LINDAA", True),  # a doubled letter
        ("MARY", "MARK", False),  # four letters: too many real names one edit apart
        ("JOHN", "JOAN", False),
        ("MARY", "GARY", False),  # the first letter differs
        ("DANA", "LANA", False),
        ("MARIA", "MARTHA", False),  # two edits
        ("SMITH", "SMYTHE", False),
    ],
)
def test_one_keying_error(left: str, right: str, expected: bool) -> None:
    assert _one_keying_error(left, right) is expected
    assert _sql(_one_keying_error_sql("first_name"), first_name_l=left, first_name_r=right) is expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("GABRIEL", "GABRIELA", True),
        ("DANIEL", "DANIELLE", True),
        ("RENE", "RENEE", True),
        ("ANTONIO", "ANTONIA", True),
        ("ROSA", "ROSAA", False),  # a doubled key: no name is made by a second A
        ("LISAA", "LISA", False),
        ("PATRICIA", "PATRICIAA", False),
        ("ROSA", "ROSE", False),
    ],
)
def test_gender_variant(left: str, right: str, expected: bool) -> None:
    both = {"first_attested_l": True, "first_attested_r": True}
    assert _gender_variant(_given(left, True), _given(right, True)) is expected
    assert _sql(GENDER_VARIANT, first_name_l=left, first_name_r=right, **both) is expected


def _given(name: str, attested: bool) -> dict[str, object]:
    return {"first_name": name, "first_attested": attested}


@pytest.mark.parametrize(
    ("request_name", "attested", "return_name", "expected"),
    [
        ("ZAR", False, "ZARA", False),  # a last letter dropped: no one is called ZAR
        ("BLAK", False, "BLAKE", False),
        ("GABRIEL", True, "GABRIELA", True),  # the shorter name is a name: two people
        ("GABRIELA", False, "GABRIEL", True),  # the return's GABRIEL is a name whatever the request says
    ],
)
def test_gender_variant_needs_the_shorter_name_to_be_a_name(
    request_name: str, attested: bool, return_name: str, expected: bool
) -> None:
    assert _gender_variant(_given(request_name, attested), _given(return_name, True)) is expected
    columns = {"first_attested_l": attested, "first_attested_r": True}
    assert _sql(GENDER_VARIANT, first_name_l=request_name, first_name_r=return_name, **columns) is expected


@pytest.mark.parametrize(
    ("request_name", "attested", "return_name", "expected"),
    [
        ("SMA", False, "SAM", True),  # two keys swapped in a name no one has
        ("NDE", False, "NED", True),
        ("RXY", False, "ROY", True),  # a neighbouring key
        ("OBB", False, "BOB", False),  # the first letter is the one least often mistyped
        ("LARY", False, "LARA", True),
        ("KZ", False, "KA", True),
        ("MARY", True, "MARK", False),  # both are names: two people, not a typo
        ("JOAN", True, "JOHN", False),
        ("J", False, "JO", False),  # an initial is not a typo
        ("SAM", True, "SAMUEL", False),  # more than one edit
    ],
)
def test_short_given_name_typo_only_when_one_side_is_no_name(
    request_name: str, attested: bool, return_name: str, expected: bool
) -> None:
    left, right = _given(request_name, attested), _given(return_name, True)
    assert _short_given_name_typo(left, right) is expected
    columns = {"first_attested_l": attested, "first_attested_r": True}
    assert _sql(SHORT_GIVEN_NAME_TYPO, first_name_l=request_name, first_name_r=return_name, **columns) is expected


@pytest.mark.parametrize(
    ("request_name", "attested", "return_name", "expected"),
    [
        ("ROGCRTO", False, "ROBERTO", True),  # two keys struck wrong
        ("JUCLY", False, "JUDY", True),  # OCR: `cl` read for `d`
        ("TAARS", False, "TARA", True),
        ("MARK", True, "MARY", False),  # both are names: twins are named this close
        ("ELLA", True, "EMMA", False),
        ("BAASN", False, "HASAN", False),  # the first letter differs
        ("ANN", False, "AMY", False),  # too short for two edits to say anything
        ("ROBRTX", False, "ROBERTO", True),
        ("ROBXXXO", False, "ROBERTO", False),  # three edits
    ],
)
def test_given_name_two_keying_errors(request_name: str, attested: bool, return_name: str, expected: bool) -> None:
    left, right = _given(request_name, attested), _given(return_name, True)
    assert _given_name_two_keying_errors(left, right) is expected
    columns = {"first_attested_l": attested, "first_attested_r": True}
    sql = _sql(GIVEN_NAME_TWO_KEYING_ERRORS, first_name_l=request_name, first_name_r=return_name, **columns)
    assert sql is expected


@pytest.mark.parametrize(
    ("request_name", "attested", "return_name", "expected"),
    [
        ("JEGAN", False, "MEGAN", True),  # the first letter keyed wrong
        ("OUIS", False, "LUIS", True),
        ("RNARK", False, "MARK", True),  # OCR: `rn` read for `m`
        ("DAV ICL", False, "DAVID", True),  # spaces aside
        ("MARY", True, "MARK", False),  # two real names: a spouse's TIN copied would look like this
        ("AL", False, "AMY", False),  # too short
        ("XAVIERA", False, "MEGAN", False),
    ],
)
def test_given_names_keyed_apart(request_name: str, attested: bool, return_name: str, expected: bool) -> None:
    left, right = _given(request_name, attested), _given(return_name, True)
    assert _given_name_keyed_apart(left, right) is expected
    columns = {"first_attested_l": attested, "first_attested_r": True}
    assert _sql(GIVEN_NAME_KEYED_APART, first_name_l=request_name, first_name_r=return_name, **columns) is expected


@pytest.mark.parametrize(
    ("request_name", "return_name", "expected"),
    [("SAN DRA", "SANDRA", True), ("MARY ANN", "MARYANN", True), ("MARY ANN", "MARY", False)],
)
def test_given_names_are_the_same_spaces_aside(request_name: str, return_name: str, expected: bool) -> None:
    assert _given_name_same(_given(request_name, False), _given(return_name, True)) is expected
    assert _sql(GIVEN_NAME_SPACED, first_name_l=request_name, first_name_r=return_name) is expected


def test_the_reference_names_hold_common_given_names_in_both_forms() -> None:
    names = reference_given_names()
    assert {"MARY", "MARK", "JOHN", "JOAN", "GABRIEL", "DANIEL", "DANIELLE", "SAM"} <= names
    assert not {"SMA", "ZAR", "BLAK"} & names


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (("MARIA", "G"), ("MARIA GUADALUPE", "A"), True),  # request's middle is the return's second given name
        (("MARIA GUADALUPE", "A"), ("MARIA", "G"), True),
        (("MARIA", "G"), ("MARIA", "A"), False),
        (("JOHN", "P"), (None, "A"), False),
        (("JOHN PAUL", "A"), ("JOHN", "B"), False),
    ],
)
def test_middle_in_given(left: tuple[str | None, str], right: tuple[str | None, str], expected: bool) -> None:
    sides = {
        "first_name_l": left[0],
        "middle_initial_l": left[1],
        "first_name_r": right[0],
        "middle_initial_r": right[1],
    }
    python = _middle_in_given(
        {"first_name": left[0], "middle_initial": left[1]}, {"first_name": right[0], "middle_initial": right[1]}
    )
    assert python is expected
    assert _sql(MIDDLE_IN_GIVEN, **sides) is expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("BOB", "ROBERT", True),
        ("MARIA", "MARIA GUADALUPE", True),  # a compound name's first word
        ("JOSE LUIS", "PEPE", True),
        ("JUAN CARLOS", "JUAN PABLO", False),  # two compound names: two people
        ("JI YEON", "JI HOON", False),
        ("MIN JI", "MIN JUN", False),
        ("BOB", "MARY", False),
    ],
)
def test_nickname(left: str, right: str, expected: bool) -> None:
    sides = {
        "first_name_l": left,
        "first_name_r": right,
        "first_forms_l": list(given_name_forms(left)),
        "first_forms_r": list(given_name_forms(right)),
    }
    (_, condition) = next(level for level in PYTHON_LEVELS["first_name"] if level[0] == "nickname")
    assert condition is not None
    python = condition(
        {"first_name": left, "first_forms": sides["first_forms_l"]},
        {"first_name": right, "first_forms": sides["first_forms_r"]},
    )
    assert python is expected
    assert _sql(NICKNAME, **sides) is expected


def test_the_written_comparison_shape_is_splinks() -> None:
    built = settings_creator("link_only", 1_000).create_settings_dict("duckdb")
    assert comparison_shape(built) == COMPARISON_SHAPE


def test_every_level_is_declared_whole() -> None:
    for comparison in COMPARISONS:
        *conditioned, last = comparison.levels
        assert last.sql is None and last.python is None, comparison.name
        for level in conditioned:
            assert level.sql and level.python is not None, (comparison.name, level.label)
        labels = [level.label for level in comparison.levels]
        assert len(set(labels)) == len(labels), comparison.name
        # m is a distribution over the non-null levels.
        assert abs(sum(level.m_prior for level in comparison.levels) - 1.0) < 1e-9, comparison.name


def test_the_decision_rule_reads_its_level_sets_from_the_declared_roles() -> None:
    from taxmatch.match import decide

    assert {"exact", "line", "street_typo"} == decide.CORROBORATING_ADDRESS_LEVELS
    assert {"place_typo", "house_typo", "street_only", "house_place"} == decide.WEAKLY_CORROBORATING_ADDRESS_LEVELS
    # Never agreement: two people (gender_variant), or too little (initial).
    not_alone = {"gender_variant", "initial", "different", "two_keying_errors", "keyed_apart"}
    assert not not_alone & decide.AGREEING_FIRST_NAME_LEVELS
    assert {"two_keying_errors"} == decide.FIRST_NAME_LEVELS_AGREEING_WITH_DOB_OR_TIN
    assert "keyed_apart" in decide.TIN_LOOSE_FIRST_NAME_LEVELS - decide.AGREEING_FIRST_NAME_LEVELS
    assert {"exact", "nickname"} == decide.SURNAME_CHANGE_FIRST_NAME_LEVELS
    # The twins list every level in the table's order.
    assert {name: [label for label, _ in levels[1:]] for name, levels in PYTHON_LEVELS.items()} == {
        comparison.name: [level.label for level in comparison.levels] for comparison in COMPARISONS
    }


@pytest.mark.parametrize(
    ("request_dob", "return_dob", "expected"),
    [
        ("1979-03-14", "1980-03-14", "keying_error"),  # the year one off, the same day
        ("1980-03-14", "1980-03-15", "keying_error"),
        ("1980-03-14", "1980-14-03", "keying_error"),
        ("1978-03-14", "1980-03-14", "different"),  # two years: another person (a sibling, a parent)
        ("1979-03-14", "1980-03-15", "different"),
        ("1939-11-23", "1939-12-13", "two_keying_errors"),  # two digits within the year: no veto
        ("1986-11-16", "1986-06-23", "different"),  # more than two
        ("1939-11-23", "1949-11-13", "different"),  # two digits, but another year
    ],
)
def test_date_of_birth_levels(request_dob: str, return_dob: str, expected: str) -> None:
    (levels,) = [levels for name, levels in PYTHON_LEVELS.items() if name == "dob"]
    python = next(
        label
        for label, condition in levels[1:]
        if condition is None or condition({"dob": request_dob}, {"dob": return_dob})
    )
    assert python == expected
    (comparison,) = [comparison for comparison in COMPARISONS if comparison.name == "dob"]
    sql = next(
        level.label
        for level in comparison.levels
        if level.sql is None or _sql(level.sql, dob_l=request_dob, dob_r=return_dob)
    )
    assert sql == expected
