from __future__ import annotations

import pytest

from taxmatch.records import ReasonCode
from taxmatch.validate.statutes import cites_any, is_within, parse_statute

from conftest import Codes

R = ReasonCode


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("8 U.S.C. § 1253(a)(1)", "8 U.S.C. 1253(a)(1)"),
        ("8 USC 1253(a)(1)", "8 U.S.C. 1253(a)(1)"),
        ("8 U.S.C. §1326", "8 U.S.C. 1326"),
        ("8 U.S.C. Sec. 1325", "8 U.S.C. 1325"),
        ("Title 8, United States Code, Section 1253(a)(1)", "8 U.S.C. 1253(a)(1)"),
        ("8 U.S. Code § 1326", "8 U.S.C. 1326"),
        ("U.S.C. Title 8 § 1326", "8 U.S.C. 1326"),
        ("§ 1326 of title 8", "8 U.S.C. 1326"),
        ("Section 1326 of Title 8, United States Code", "8 U.S.C. 1326"),
        ("  8   u.s.c.  1253 (a) (1) ", "8 U.S.C. 1253(a)(1)"),
        ("8 U.S.C. 1326(B)(2)", "8 U.S.C. 1326(b)(2)"),
        ("8 U.S.C.A. § 1326", "8 U.S.C. 1326"),
        ("8 usc 1324a", "8 U.S.C. 1324a"),
        ("18 U.S.C. §§ 1001", "18 U.S.C. 1001"),
    ],
)
def test_parse_statute(text: str, canonical: str) -> None:
    assert parse_statute(text) == canonical


@pytest.mark.parametrize("text", ["", "hello", "8 CFR 1326", "1326", "8 USC", "8 USC 1326 and 1182", "USC 1326"])
def test_not_a_citation(text: str) -> None:
    assert parse_statute(text) is None


def test_subsection_containment() -> None:
    assert is_within("8 U.S.C. 1326(a)", "8 U.S.C. 1326")
    assert not is_within("8 U.S.C. 13260", "8 U.S.C. 1326")
    assert not is_within("8 U.S.C. 1253", "8 U.S.C. 1253(a)(1)")
    assert not is_within("8 U.S.C. 1253(b)", "8 U.S.C. 1253(a)(1)")
    assert cites_any("8 USC 1253(a)(1)(A)", ("8 U.S.C. § 1253(a)(1)",))


@pytest.mark.parametrize(
    "statute",
    [
        "8 USC 1253(a)(1)",
        "Title 8, United States Code, Section 1326",
        "8 U.S.C. 1325",
        "8 U.S.C. 1326(a)",
        "§ 1326 of title 8",
    ],
)
def test_permitted_statutes(codes: Codes, statute: str) -> None:
    # A 2024 order is older than the removal period, so 1253(a)(1) passes too.
    assert codes(statute=statute) == []


@pytest.mark.parametrize(
    "statute",
    [
        "8 U.S.C. § 1227(a)(1)",
        "8 U.S.C. 1182",
        "8 U.S.C. 1253",
        "8 U.S.C. 1253(b)",
        "18 U.S.C. 1326",
        "8 U.S.C. 13260",
        "illegal reentry",
        "8 CFR 1326",
    ],
)
def test_statute_not_permitted(codes: Codes, statute: str) -> None:
    assert codes(statute=statute) == [R.STATUTE_NOT_PERMITTED]


@pytest.mark.parametrize("statute", ["", "   ", None])
def test_missing_statute(codes: Codes, statute: str | None) -> None:
    assert codes(statute=statute) == [R.MISSING_STATUTE]
