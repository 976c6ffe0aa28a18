"""The SQL standardizer (run on master and requests alike) and its Python twins."""

from __future__ import annotations

import duckdb
import pytest

from taxmatch.standardize.names import given_name_forms
from taxmatch.standardize.python_standardizer import fold_name
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
    assert [found for _, found in names] == [name]


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
