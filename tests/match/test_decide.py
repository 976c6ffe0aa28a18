"""The decision rule on hand-made scored pairs: every way it may refuse to disclose."""

from __future__ import annotations

from dataclasses import replace

from taxmatch.match.candidates import CandidatePair, ReturnRow
from taxmatch.match.decide import Choice, choose_taxpayer, disclose, tin_keying_error
from taxmatch.records import Outcome, ReasonCode
from taxmatch.settings import Policy

POLICY = Policy.default()
STRONG = CandidatePair(
    request_index=0,
    return_id=1,
    tin="123456789",
    match_probability=0.99995,
    first_name_level="exact",
    last_name_level="exact",
    dob_level="exact",
    address_level="exact",
    request_suffix="",
    return_suffix="",
    request_tin="",
    return_tax_year=2024,
)


def test_strong_corroborated_pair_is_chosen_with_evidence() -> None:
    choice = choose_taxpayer([STRONG], POLICY)
    assert isinstance(choice, Choice)
    assert choice.tin == "123456789"
    assert choice.evidence == "name=exact;address=exact;dob=exact"


def test_no_pairs_is_no_candidate() -> None:
    assert choose_taxpayer([], POLICY) is ReasonCode.NO_CANDIDATE
    assert choose_taxpayer([replace(STRONG, match_probability=0.01)], POLICY) is ReasonCode.NO_CANDIDATE


def test_address_must_be_corroborated_by_the_taxpayers_own_return() -> None:
    elsewhere = replace(STRONG, address_level="zip_only")
    assert choose_taxpayer([elsewhere], POLICY) is ReasonCode.BELOW_THRESHOLD
    typo = replace(STRONG, address_level="street_typo")
    assert isinstance(choose_taxpayer([typo], POLICY), Choice)


def test_conflicting_dob_vetoes_but_keying_error_does_not() -> None:
    assert choose_taxpayer([replace(STRONG, dob_level="different")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert isinstance(choose_taxpayer([replace(STRONG, dob_level="keying_error")], POLICY), Choice)


def test_conflicting_tin_vetoes_but_one_digit_off_does_not() -> None:
    assert choose_taxpayer([replace(STRONG, request_tin="987654321")], POLICY) is ReasonCode.BELOW_THRESHOLD
    near = choose_taxpayer([replace(STRONG, request_tin="123456780")], POLICY)
    assert isinstance(near, Choice) and "tin=keying_error" in near.evidence
    assert tin_keying_error("123456789", "123456798")
    assert not tin_keying_error("123456789", "123456700")


def test_suffix_conflict_vetoes() -> None:
    father = replace(STRONG, request_suffix="JR", return_suffix="SR")
    assert choose_taxpayer([father], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_two_plausible_taxpayers_at_the_address_are_ambiguous() -> None:
    senior = replace(STRONG, return_id=2, tin="223456789", match_probability=0.9999)
    assert choose_taxpayer([STRONG, senior], POLICY) is ReasonCode.AMBIGUOUS
    unlikely_housemate = replace(senior, match_probability=0.02, first_name_level="different")
    assert isinstance(choose_taxpayer([STRONG, unlikely_housemate], POLICY), Choice)


def test_a_vetoed_relative_does_not_make_it_ambiguous() -> None:
    senior = replace(STRONG, return_id=2, tin="223456789", match_probability=0.9999, dob_level="different")
    assert isinstance(choose_taxpayer([STRONG, senior], POLICY), Choice)


def test_weak_name_never_discloses_even_when_probable() -> None:
    initial_only = replace(STRONG, first_name_level="initial")
    assert choose_taxpayer([initial_only], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_below_threshold() -> None:
    assert choose_taxpayer([replace(STRONG, match_probability=0.99)], POLICY) is ReasonCode.BELOW_THRESHOLD


def _return(year: int, street: str) -> ReturnRow:
    return ReturnRow(7, "123456789", year, "primary", "Ann", "", "Lee", "", street, "", "Reno", "NV", "89501", "555")


def test_disclose_takes_most_recent_return_in_period_and_no_phone() -> None:
    choice = Choice("123456789", 0.9999, "name=exact;address=exact")
    returns = [_return(2025, "3 New St"), _return(2023, "2 Mid St"), _return(2020, "1 Old St")]
    decision = disclose("r1", choice, returns, (2021, 2024), POLICY)
    assert decision.outcome is Outcome.DISCLOSED
    assert decision.disclosure is not None
    assert (decision.disclosure.street, decision.disclosure.tax_year) == ("2 Mid St", 2023)
    assert decision.disclosure.tin_last4 == "6789"
    assert decision.disclosure.phone == ""


def test_no_return_in_period() -> None:
    choice = Choice("123456789", 0.9999, "name=exact;address=exact")
    decision = disclose("r1", choice, [_return(2019, "1 Old St")], (2021, 2024), POLICY)
    assert decision.outcome is Outcome.NOT_MATCHED
    assert decision.reason_codes == (ReasonCode.NO_RETURN_IN_PERIOD,)
