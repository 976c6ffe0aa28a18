"""Agency names compare in any letter case, in Python and in SQL alike."""

from __future__ import annotations

import duckdb
import pytest

from taxmatch.agency import agency_key, agency_key_sql, same_agency

NAMES = ["ICE", "ice", " Ice ", "HSI-NY", "Oficina Álava", "ÅLAND", "cbp", "ΔΕΛΤΑ"]


def test_same_agency_ignores_case_and_outer_spaces() -> None:
    assert same_agency("ICE", " ice")
    assert not same_agency("ICE", "ICE2")


@pytest.mark.parametrize("name", NAMES)
def test_sql_twin_folds_as_python_does(name: str) -> None:
    con = duckdb.connect()
    try:
        row = con.execute(f"SELECT {agency_key_sql('?')}", [name]).fetchone()
    finally:
        con.close()
    assert row is not None and row[0] == agency_key(name)
