from __future__ import annotations

from taxmatch.records import NOT_MATCHED_CODES, REASON_TEXT, REJECTION_CODES, ReasonCode, sort_reason_codes


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
