from __future__ import annotations

import dataclasses

import pytest

from taxmatch.records import (
    NOT_MATCHED_CODES,
    REASON_TEXT,
    REJECTION_CODES,
    Decision,
    Disclosure,
    Outcome,
    ReasonCode,
    field_filler,
    new_decision,
    new_disclosure,
    sort_reason_codes,
)


def test_reason_codes_are_exactly_the_contract_in_order() -> None:
    assert [code.value for code in REJECTION_CODES] == [
        "MISSING_NAME", "INVALID_NAME", "MISSING_ADDRESS", "INCOMPLETE_ADDRESS", "INVALID_ADDRESS", "INVALID_ZIP",
        "ZIP_STATE_MISMATCH", "MISSING_REMOVAL_ORDER", "INVALID_A_NUMBER", "INVALID_REMOVAL_ORDER_DATE",
        "MISSING_STATUTE", "STATUTE_NOT_PERMITTED", "MISSING_TAX_PERIOD", "INVALID_TAX_PERIOD", "INVALID_DOB",
        "INVALID_TIN", "DUPLICATE_REQUEST_ID", "MALFORMED_RECORD",
    ]  # fmt: skip
    assert [code.value for code in NOT_MATCHED_CODES] == [
        "NO_CANDIDATE", "BELOW_THRESHOLD", "AMBIGUOUS", "NO_RETURN_IN_PERIOD",
    ]  # fmt: skip
    assert set(REASON_TEXT) == set(ReasonCode)


def test_sort_uses_contract_order_not_alphabet() -> None:
    codes = [ReasonCode.INVALID_TIN, ReasonCode.MISSING_NAME, ReasonCode.INVALID_ZIP, ReasonCode.MISSING_NAME]
    assert sort_reason_codes(codes) == [ReasonCode.MISSING_NAME, ReasonCode.INVALID_ZIP, ReasonCode.INVALID_TIN]


def test_field_filler_builds_what_the_constructor_builds() -> None:
    disclosure = Disclosure("1234", "A", "", "B", "", "1 MAIN ST", "", "X", "CA", "90001", 2024, 0.9995, "e", "9", "")
    filled = new_disclosure("1234", "A", "", "B", "", "1 MAIN ST", "", "X", "CA", "90001", 2024, 0.9995, "e", "9", "")
    assert filled == disclosure and hash(filled) == hash(disclosure) and repr(filled) == repr(disclosure)
    decision = new_decision("r-1", Outcome.DISCLOSED, (), filled, "")
    assert decision == Decision("r-1", Outcome.DISCLOSED, (), disclosure)
    with pytest.raises(dataclasses.FrozenInstanceError):
        filled.zip = "00000"  # type: ignore[misc]
    with pytest.raises(ValueError):
        new_decision("r-1", Outcome.DISCLOSED)  # every field, always


def test_a_class_that_does_more_than_store_is_built_by_its_constructor() -> None:
    @dataclasses.dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    with pytest.raises(ValueError, match="negative"):
        field_filler(Checked)(-1)
