"""Given-name forms: the English table, the Spanish one, and English nicknames of Spanish names."""

from __future__ import annotations

import pytest

from taxmatch.standardize.names import given_name_forms


def _compatible(left: str, right: str) -> bool:
    return bool(set(given_name_forms(left)) & set(given_name_forms(right)))


@pytest.mark.parametrize(
    ("nickname", "name"),
    [("BOB", "ROBERT"), ("PEPE", "JOSE"), ("JERRY", "GERARDO"), ("JERRY", "GERALD"), ("GERRY", "GERARDO")],
)
def test_nickname_and_name_are_compatible(nickname: str, name: str) -> None:
    assert _compatible(nickname, name)


@pytest.mark.parametrize(("left", "right"), [("MARY", "GARY"), ("GERARDO", "GERALD"), ("JERRY", "JOSE")])
def test_distinct_names_are_not_compatible(left: str, right: str) -> None:
    assert not _compatible(left, right)


def test_the_name_itself_comes_first() -> None:
    assert given_name_forms("JERRY")[0] == "JERRY"
    assert given_name_forms("") == ()
