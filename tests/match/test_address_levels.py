"""The address comparison on hand-made pairs: which level a request's address reaches, in SQL and in Python.

Each case is standardized by the Python standardizer (held to the SQL elsewhere), then given a
level by the model's SQL conditions in DuckDB and by the Python twin: both must say the expected.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
import pytest

from taxmatch.match.levels import ADDRESS_COLUMNS, PYTHON_LEVELS
from taxmatch.match.model import settings_creator
from taxmatch.standardize.python_standardizer import standardize_row

Place = tuple[str, str, str, str, str]  # street, unit, city, state, zip


def _side(place: Place) -> dict[str, Any]:
    street, unit, city, state, zip_code = place
    return standardize_row("ANA", None, "LOPEZ", None, None, None, street, unit, city, state, zip_code)


def _python_level(left: dict[str, Any], right: dict[str, Any]) -> str:
    for label, condition in PYTHON_LEVELS["address"]:
        if condition is None or condition(left, right):
            return "null" if label == "missing" else label
    raise AssertionError("the else level always holds")


@pytest.fixture(scope="module")
def sql_levels() -> list[tuple[str, str]]:
    settings = settings_creator("link_only", 1000).get_settings("duckdb")
    address = next(c for c in settings.comparisons if c.output_column_name == "address")
    return [(str(level.label_for_charts), str(level.sql_condition)) for level in address.comparison_levels]


def _sql_level(sql_levels: list[tuple[str, str]], left: dict[str, Any], right: dict[str, Any]) -> str:
    columns = {
        f"{column}_{side}": [row[column]] for column in ADDRESS_COLUMNS for side, row in (("l", left), ("r", right))
    }
    connection = duckdb.connect()
    connection.register(
        "pair", pa.table({name: pa.array(values, type=pa.string()) for name, values in columns.items()})
    )
    case = " ".join(f"WHEN {condition} THEN '{label}'" for label, condition in sql_levels if condition != "ELSE")
    found = connection.execute(f"SELECT CASE {case} ELSE 'different' END FROM pair").fetchone()
    assert found is not None
    return str(found[0])


SPRINGFIELD: Place = ("", "", "SPRINGFIELD", "IL", "62704")


def _at(street: str, unit: str = "", city: str = "SPRINGFIELD", state: str = "IL", zip_code: str = "62704") -> Place:
    return (street, unit, city, state, zip_code)


@pytest.mark.parametrize(
    ("request_place", "return_place", "expected"),
    [
        (_at("12 Oak St"), _at("12 OAK STREET"), "exact"),
        # The parser need not agree: spaces, suffix spellings and a missing directional fold away.
        (_at("28 hollwaystreet"), _at("28 Hollway St"), "line"),
        (_at("2 tasman p lace"), _at("2 Tasman Pl"), "line"),
        (_at("2 oxley st reet"), _at("2 Oxley St"), "line"),
        (_at("3077 Elm Pl"), _at("3077 E Elm Pl"), "line"),
        # A suffix left out on one side agrees, alone or with a typo; written on both, it must agree.
        (_at("309 Maple"), _at("309 Maple St"), "line"),
        (_at("309 N Maple Street"), _at("309 Maple"), "line"),
        (_at("309 Mapel"), _at("309 Maple St"), "street_typo"),
        (_at("309 Maple Ave"), _at("309 Maple St"), "zip_only"),
        (_at("39 E Hill"), _at("39 E Hill Pl"), "line"),  # a name that is also a suffix word
        (_at("670 Harbor"), _at("670 Harbor Ct"), "line"),
        # A short suffix glued to the name: `5thave` is 5th Ave.
        (_at("344 E 5thave"), _at("344 East 5th Avenue"), "line"),
        (_at("367 Orchardst"), _at("367 Orchard St"), "line"),
        (_at("367 Orchardst"), _at("367 Orchard Ave"), "zip_only"),
        (_at("8 barwon srteet"), _at("8 Barwon Street"), "street_typo"),
        (_at("37 reveley rescent"), _at("37 Reveley Crescent"), "street_typo"),
        # Two streets, two households: never corroboration.
        (_at("12 Oak Ct"), _at("12 Oak St"), "zip_only"),
        (_at("100 N Main St"), _at("100 S Main St"), "zip_only"),
        (_at("12 Oak St", "4B"), _at("12 Oak St", "5A"), "other_unit"),
        # Keyed wrong: weak corroboration (the decision rule wants an agreeing DOB or TIN with it).
        (_at("42 McClintock St"), _at("24 McClintock St"), "house_typo"),
        (_at("37 Torrens St", city="DIANELKA", zip_code="62705"), _at("37 Torrens St", city="DIANELLA"), "place_typo"),
        (_at("16 Temperley St"), _at("2 Temperley St"), "street_only"),
        (_at("9 Elm Ave"), _at("12 Oak St"), "zip_only"),
        # The same house number and ZIP on a street written wholly otherwise: weak as well; a sibling
        # street (another suffix or directional of one name) stays another household.
        (_at("12 Elm Ave"), _at("12 Oak St"), "house_place"),
        (_at("27 jarreah"), _at("27 Mackinnon Street"), "house_place"),
        (_at("12 Oak St", "4B"), _at("12 Elm Ave", "5A"), "zip_only"),
        (_at("12 Oak St", zip_code="62705"), _at("12 Elm Ave"), "different"),
        (_at("PO Box 12"), _at("12 Elm Ave"), "zip_only"),
        # A return's street without a house number: the street, never the house.
        (_at("15 torrens street"), _at("torrens street"), "street_only"),
        (_at("1 dookie treet"), _at("Dookie St"), "street_only"),
        (_at("15 Oak St"), _at("Elm Ave"), "zip_only"),
        (_at("15 Oak St"), _at(""), "null"),
        (_at("9 Elm Ave", zip_code="10001", state="NY", city="NEW YORK"), _at("12 Oak St"), "different"),
    ],
)
def test_address_level(
    sql_levels: list[tuple[str, str]], request_place: Place, return_place: Place, expected: str
) -> None:
    left, right = _side(request_place), _side(return_place)
    assert _python_level(left, right) == expected
    assert _sql_level(sql_levels, left, right) == expected
