"""The SQL standardizer (run on master and requests alike) and its Python twins."""

from __future__ import annotations

import duckdb
import pytest

from taxmatch.standardize.names import given_name_forms
from taxmatch.standardize.python_standardizer import fold_name, street_core, street_parts
from taxmatch.standardize.sql import standardization_macros, street_name_sql, street_token_table_sql


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for macro in standardization_macros():
        connection.execute(macro)
    connection.execute(street_token_table_sql())
    return connection


@pytest.mark.parametrize(
    "name", ["José Núñez-García", "O'Brien", "de la Cruz", "  MARY   ann ", "Smith Jr.", "Zoë", "Nguyễn", "", "Ñandú"]
)
def test_python_and_sql_fold_names_alike(con: duckdb.DuckDBPyConnection, name: str) -> None:
    row = con.execute("SELECT tm_fold_name(?)", [name]).fetchone()
    assert row is not None
    assert row[0] == fold_name(name)


@pytest.mark.parametrize(
    ("street", "unit", "house", "name", "unit_id"),
    [
        ("123 North Main Street", "Apt 4B", "123", "N MAIN ST", "4B"),
        ("123 N. Main St., #4B", None, "123", "N MAIN ST", "4B"),
        ("123 n main st", "UNIT 4b", "123", "N MAIN ST", "4B"),
        ("45 De La Cruz Boulevard", "#12", "45", "DE LA CRUZ BLVD", "12"),
        ("9 Oak Avenue Apt 3", "", "9", "OAK AVE", "3"),
    ],
)
def test_street_forms_fold_to_one_key(
    con: duckdb.DuckDBPyConnection, street: str, unit: str | None, house: str, name: str, unit_id: str
) -> None:
    row = con.execute("SELECT tm_house_number(?), tm_unit(?, ?)", [street, unit, street]).fetchone()
    assert row == (house, unit_id)
    names = con.execute(street_name_sql("SELECT tm_street_core(?) AS street_core"), [street]).fetchall()
    assert [found[1] for found in names] == [name]


@pytest.mark.parametrize(
    ("street", "line", "directions", "street_type", "bare"),
    [
        ("123 North Main Street", "MAINSTREET", "N", "ST", "MAIN"),
        ("3077 Elm Pl", "ELMPLACE", None, "PL", "ELM"),
        ("3077 E Elm Pl", "ELMPLACE", "E", "PL", "ELM"),
        ("28 hollwaystreet", "HOLLWAYSTREET", None, None, "HOLLWAYSTREET"),
        ("28 Hollway St", "HOLLWAYSTREET", None, "ST", "HOLLWAY"),
        ("2 tasman p lace", "TASMANPLACE", None, None, "TASMANPLACE"),
        ("2 oxley st reet", "OXLEYSTREET", None, None, "OXLEYSTREET"),
        ("12 Oak Ct", "OAKCOURT", None, "CT", "OAK"),
        ("12 Oak St", "OAKSTREET", None, "ST", "OAK"),
        ("5 St James Pl", "STJAMESPLACE", None, "PL", "STJAMES"),
        ("309 Maple", "MAPLE", None, None, "MAPLE"),
        ("39 E Hill", "HILL", "E", None, "HILL"),  # one word names the street, even a suffix word
        ("39 E Hill Pl", "HILLPLACE", "E", "PL", "HILL"),
        ("125 Center", "CENTER", None, None, "CENTER"),
        ("5 Avenue B", "AVENUEB", None, None, "AVENUEB"),
        ("7 N", "N", "N", None, None),
    ],
)
def test_street_line_folds_spaces_suffixes_and_directionals(
    con: duckdb.DuckDBPyConnection,
    street: str,
    line: str,
    directions: str | None,
    street_type: str | None,
    bare: str | None,
) -> None:
    """The line a comparison reads whatever the parse: the SQL and its Python twin agree on it."""
    found = con.execute(street_name_sql("SELECT tm_street_core(?) AS street_core"), [street]).fetchall()
    assert [(row[2], row[4] or None, row[5] or None, row[3] or None) for row in found] == [
        (line, directions, street_type, bare)
    ]
    assert street_parts(street_core(street)) == (line, directions, street_type, bare)


def test_po_box_is_read(con: duckdb.DuckDBPyConnection) -> None:
    assert con.execute("SELECT tm_po_box('P.O. Box 77')").fetchone() == ("77",)
    assert con.execute("SELECT tm_house_number('PO Box 77')").fetchone() == ("",)


def test_nicknames_share_a_form() -> None:
    assert "ROBERT" in given_name_forms("BOB")
    assert "WILLIAM" in given_name_forms("BILL")
    assert "JOSE" in given_name_forms("PEPE")
    assert "FRANCISCO" in given_name_forms("PACO")
    assert "GUADALUPE" in given_name_forms("LUPE")
    assert given_name_forms("ROBERT")[0] == "ROBERT"
    assert not set(given_name_forms("MARIA")) & set(given_name_forms("JOSE"))
