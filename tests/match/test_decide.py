"""The decision rule on hand-made scored pairs: every way it may refuse to disclose."""

from __future__ import annotations

import math
import random
from operator import attrgetter
from typing import Any

from taxmatch.match import decide
from taxmatch.match.candidates import CandidatePair, ReturnRow, TaxpayerFacts
from taxmatch.match.decide import Choice, choose_taxpayer, disclose, generation_facts_wanted
from taxmatch.records import Outcome, ReasonCode
from taxmatch.settings import Policy

POLICY = Policy.default()


def scored(pair: CandidatePair, probability: float, **changes: Any) -> CandidatePair:
    weight = math.log2(probability / (1.0 - probability))
    return pair._replace(match_probability=probability, match_weight=weight, **changes)


STRONG = scored(
    CandidatePair(
        request_index=0,
        return_id=1,
        tin="123456789",
        match_probability=0.0,
        match_weight=0.0,
        first_name_level="exact",
        last_name_level="exact",
        dob_level="exact",
        address_level="exact",
        tin_level="missing",
        request_suffix="",
        return_suffix="",
        request_tin="",
    ),
    0.99995,
)


def test_strong_corroborated_pair_is_chosen_with_evidence() -> None:
    choice = choose_taxpayer([STRONG], POLICY)
    assert isinstance(choice, Choice)
    assert choice.tin == "123456789"
    assert choice.evidence == "name=exact;address=exact;dob=exact"
    assert abs(choice.match_probability - 0.99995) < 1e-9


def test_no_pairs_is_no_candidate() -> None:
    assert choose_taxpayer([], POLICY) is ReasonCode.NO_CANDIDATE
    assert choose_taxpayer([scored(STRONG, 0.01)], POLICY) is ReasonCode.NO_CANDIDATE


def test_address_must_be_corroborated_by_the_taxpayers_own_return() -> None:
    elsewhere = STRONG._replace(address_level="zip_only")
    assert choose_taxpayer([elsewhere], POLICY) is ReasonCode.BELOW_THRESHOLD
    typo = STRONG._replace(address_level="street_typo")
    assert isinstance(choose_taxpayer([typo], POLICY), Choice)


def test_another_flat_in_the_building_does_not_corroborate() -> None:
    assert choose_taxpayer([STRONG._replace(address_level="other_unit")], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_conflicting_dob_vetoes_but_keying_error_does_not() -> None:
    assert choose_taxpayer([STRONG._replace(dob_level="different")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert isinstance(choose_taxpayer([STRONG._replace(dob_level="keying_error")], POLICY), Choice)


def test_conflicting_tin_vetoes_but_one_digit_off_does_not() -> None:
    conflict = STRONG._replace(request_tin="987654321", tin_level="different")
    assert choose_taxpayer([conflict], POLICY) is ReasonCode.BELOW_THRESHOLD
    near = choose_taxpayer([STRONG._replace(request_tin="123456780", tin_level="keying_error")], POLICY)
    assert isinstance(near, Choice) and "tin=keying_error" in near.evidence


def test_suffix_conflict_vetoes() -> None:
    father = STRONG._replace(request_suffix="JR", return_suffix="SR")
    assert choose_taxpayer([father], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_sr_on_the_return_without_dob_or_suffix_in_the_request_is_ambiguous() -> None:
    # The return says SR: a JR exists somewhere, and nothing in the request says which one is meant.
    father_only = STRONG._replace(return_suffix="SR", dob_level="missing")
    assert choose_taxpayer([father_only], POLICY) is ReasonCode.AMBIGUOUS
    assert isinstance(choose_taxpayer([father_only._replace(dob_level="exact")], POLICY), Choice)
    junior_request = STRONG._replace(request_suffix="JR", dob_level="missing")
    assert choose_taxpayer([junior_request], POLICY) is ReasonCode.AMBIGUOUS


def test_same_name_at_the_address_is_ambiguous_whatever_the_probabilities() -> None:
    senior = scored(STRONG, 0.9999, return_id=2, tin="223456789")
    assert choose_taxpayer([STRONG, senior], POLICY) is ReasonCode.AMBIGUOUS
    faint_namesake = scored(senior, 0.3, dob_level="missing")
    assert choose_taxpayer([STRONG, faint_namesake], POLICY) is ReasonCode.AMBIGUOUS


def test_twin_with_another_first_name_is_told_apart() -> None:
    twin = scored(STRONG, 0.9998, return_id=2, tin="223456789", first_name_level="different")
    choice = choose_taxpayer([scored(STRONG, 0.99999999), twin], POLICY)
    assert isinstance(choice, Choice) and choice.tin == STRONG.tin


def test_a_strong_rival_anywhere_shares_the_probability() -> None:
    rival_elsewhere = scored(STRONG, 0.999, return_id=3, tin="323456789", address_level="zip_only")
    assert choose_taxpayer([STRONG, rival_elsewhere], POLICY) is ReasonCode.AMBIGUOUS


# The best taxpayer has no suffix and the request no date of birth; a namesake elsewhere files as JR.
UNCONFIRMED = STRONG._replace(dob_level="missing")
JR_ELSEWHERE = scored(UNCONFIRMED, 1e-6, return_id=4, tin="423456789", address_level="different", return_suffix="JR")


def facts(addresses: set[str], years: set[int], initials: set[str]) -> TaxpayerFacts:
    return TaxpayerFacts(frozenset(addresses), frozenset(years), frozenset(initials))


def test_a_suffixed_namesake_elsewhere_makes_it_ambiguous_without_facts() -> None:
    assert choose_taxpayer([UNCONFIRMED, JR_ELSEWHERE], POLICY) is ReasonCode.AMBIGUOUS
    assert generation_facts_wanted([UNCONFIRMED, JR_ELSEWHERE], POLICY) == {UNCONFIRMED.tin, JR_ELSEWHERE.tin}


def test_facts_are_wanted_only_when_a_suffixed_namesake_could_change_the_answer() -> None:
    assert generation_facts_wanted([UNCONFIRMED], POLICY) == frozenset()
    assert generation_facts_wanted([STRONG, JR_ELSEWHERE._replace(dob_level="exact")], POLICY) == frozenset()
    asked_for_jr = [UNCONFIRMED._replace(request_suffix="JR"), JR_ELSEWHERE._replace(request_suffix="JR")]
    assert generation_facts_wanted(asked_for_jr, POLICY) == frozenset()


def test_a_namesake_who_could_be_his_son_keeps_it_ambiguous() -> None:
    father = facts({"62701|12"}, {1960}, {"J"})
    known = {UNCONFIRMED.tin: father, JR_ELSEWHERE.tin: facts({"30301|4"}, {1986}, {"J"})}
    assert choose_taxpayer([UNCONFIRMED, JR_ELSEWHERE], POLICY, known) is ReasonCode.AMBIGUOUS
    # Unknown birth years or middle initials link them too, and so does any address filed from by both.
    unknown = {UNCONFIRMED.tin: father, JR_ELSEWHERE.tin: facts({"30301|4"}, set(), set())}
    assert choose_taxpayer([UNCONFIRMED, JR_ELSEWHERE], POLICY, unknown) is ReasonCode.AMBIGUOUS
    shared = {UNCONFIRMED.tin: father, JR_ELSEWHERE.tin: facts({"62701|12"}, {1961}, {"K"})}
    assert choose_taxpayer([UNCONFIRMED, JR_ELSEWHERE], POLICY, shared) is ReasonCode.AMBIGUOUS
    missing = {UNCONFIRMED.tin: father}
    assert choose_taxpayer([UNCONFIRMED, JR_ELSEWHERE], POLICY, missing) is ReasonCode.AMBIGUOUS


def test_a_namesake_who_cannot_be_his_father_or_son_is_passed_over() -> None:
    best = facts({"62701|12"}, {1960}, {"J"})
    other_middle = {UNCONFIRMED.tin: best, JR_ELSEWHERE.tin: facts({"30301|4"}, {1986}, {"R"})}
    choice = choose_taxpayer([UNCONFIRMED, JR_ELSEWHERE], POLICY, other_middle)
    assert isinstance(choice, Choice) and choice.tin == UNCONFIRMED.tin
    same_generation = {UNCONFIRMED.tin: best, JR_ELSEWHERE.tin: facts({"30301|4"}, {1965}, {"J"})}
    assert isinstance(choose_taxpayer([UNCONFIRMED, JR_ELSEWHERE], POLICY, same_generation), Choice)


def test_facts_never_clear_the_best_taxpayers_own_suffix() -> None:
    own = UNCONFIRMED._replace(return_suffix="SR")
    known = {own.tin: facts({"62701|12"}, {1960}, {"J"})}
    assert choose_taxpayer([own], POLICY, known) is ReasonCode.AMBIGUOUS


def test_a_vetoed_relative_does_not_make_it_ambiguous() -> None:
    senior = scored(STRONG, 0.9999, return_id=2, tin="223456789", dob_level="different")
    assert isinstance(choose_taxpayer([STRONG, senior], POLICY), Choice)


def test_weak_name_never_discloses_even_when_probable() -> None:
    initial_only = STRONG._replace(first_name_level="initial")
    assert choose_taxpayer([initial_only], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_below_threshold() -> None:
    assert choose_taxpayer([scored(STRONG, 0.99)], POLICY) is ReasonCode.BELOW_THRESHOLD


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


def test_strongest_first_is_the_sort_by_weight_then_tie_break() -> None:
    generator = random.Random(2026)
    for _ in range(200):
        pairs = [
            STRONG._replace(
                return_id=generator.randrange(20),
                tin=str(generator.randrange(5)),
                match_weight=generator.choice([-3.0, -0.0, 0.0, 1.5, 1.5, 7.25]),
            )
            for _ in range(generator.randrange(12))
        ]
        for name in ("return_id", "tin"):
            expected = sorted(pairs, key=lambda pair: (-pair.match_weight, getattr(pair, name)))
            assert decide._strongest_first(pairs, attrgetter(name)) == expected


def test_an_address_keyed_wrong_corroborates_only_with_an_agreeing_date_of_birth_or_tin() -> None:
    for level in ("house_typo", "place_typo", "street_only", "house_place"):
        weak = STRONG._replace(address_level=level)
        assert isinstance(choose_taxpayer([weak], POLICY), Choice), level
        if level == "house_typo":  # ... or, for a house number keyed wrong, with the whole name exact
            assert isinstance(choose_taxpayer([weak._replace(dob_level="missing")], POLICY), Choice)
            weak = weak._replace(last_name_level="fuzzy")
        assert choose_taxpayer([weak._replace(dob_level="missing")], POLICY) is ReasonCode.BELOW_THRESHOLD
        assert choose_taxpayer([weak._replace(dob_level="keying_error")], POLICY) is ReasonCode.BELOW_THRESHOLD
        with_tin = weak._replace(dob_level="missing", tin_level="exact")
        assert isinstance(choose_taxpayer([with_tin], POLICY), Choice), level


def test_a_house_number_keyed_wrong_corroborates_with_the_whole_name_exact() -> None:
    keyed = STRONG._replace(address_level="house_typo", dob_level="missing")
    assert isinstance(choose_taxpayer([keyed], POLICY), Choice)
    for first, last in (("fuzzy", "exact"), ("exact", "typo"), ("nickname", "exact"), ("swapped", "swapped")):
        loose = keyed._replace(first_name_level=first, last_name_level=last)
        assert choose_taxpayer([loose], POLICY) is ReasonCode.BELOW_THRESHOLD, (first, last)
    # A namesake next door whose house number is the one keyed is then as good a candidate.
    neighbour = keyed._replace(tin="987654321", return_id=2)
    assert choose_taxpayer([keyed, neighbour], POLICY) is ReasonCode.AMBIGUOUS
    # Only a house number: the place or the street keyed wrong still needs a birth date or TIN.
    for level in ("place_typo", "street_only", "house_place"):
        assert choose_taxpayer([keyed._replace(address_level=level)], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_a_changed_surname_agrees_when_given_name_birth_date_and_address_do() -> None:
    married = STRONG._replace(last_name_level="different")
    choice = choose_taxpayer([married], POLICY)
    assert isinstance(choice, Choice)
    assert choice.evidence == "name=last_different;address=exact;dob=exact"
    assert choose_taxpayer([married._replace(dob_level="missing")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([married._replace(address_level="street_only")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([married._replace(first_name_level="fuzzy")], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_a_given_name_that_disagrees_is_never_the_same_person_whatever_else_agrees() -> None:
    # Twins share surname, birth date and address: the other given name is the other twin.
    twin = STRONG._replace(first_name_level="different")
    assert choose_taxpayer([twin], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_a_given_name_keyed_wrong_twice_agrees_only_beside_an_exact_birth_date_or_tin() -> None:
    garbled = STRONG._replace(first_name_level="two_keying_errors")
    assert isinstance(choose_taxpayer([garbled], POLICY), Choice)
    assert choose_taxpayer([garbled._replace(dob_level="missing")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([garbled._replace(dob_level="keying_error")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert isinstance(choose_taxpayer([garbled._replace(dob_level="missing", tin_level="exact")], POLICY), Choice)
    # The surname must agree as well: it is no surname-change rule.
    assert choose_taxpayer([garbled._replace(last_name_level="different")], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_a_given_name_keyed_apart_agrees_only_beside_an_exact_tin_and_an_agreeing_surname() -> None:
    keyed = STRONG._replace(first_name_level="keyed_apart")
    assert choose_taxpayer([keyed], POLICY) is ReasonCode.BELOW_THRESHOLD  # an exact DOB is not enough
    with_tin = keyed._replace(dob_level="missing", tin_level="exact")
    assert isinstance(choose_taxpayer([with_tin], POLICY), Choice)
    assert choose_taxpayer([with_tin._replace(last_name_level="different")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([with_tin._replace(tin_level="keying_error")], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_two_digits_of_a_birth_date_keyed_wrong_within_the_year_do_not_veto() -> None:
    assert isinstance(choose_taxpayer([STRONG._replace(dob_level="two_keying_errors")], POLICY), Choice)
    # ... nor do they stand in for an exact date where one is needed.
    weak = STRONG._replace(address_level="place_typo", dob_level="two_keying_errors")
    assert choose_taxpayer([weak], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_an_exact_tin_tells_twins_apart_so_a_misspelt_given_name_may_disagree() -> None:
    # The twin's TIN would be a veto, so an exact TIN with an exact birth date and surname is the
    # taxpayer even when the given name is respelt beyond every name level (Fuc for Phuc).
    respelt = STRONG._replace(first_name_level="different", tin_level="exact")
    choice = choose_taxpayer([respelt], POLICY)
    assert isinstance(choice, Choice)
    assert choice.evidence == "name=first_different;address=exact;dob=exact;tin=exact"
    # The surname alone needs the exact date of birth too: a relative's TIN copied onto a request
    # comes with the family's surname, not with the given name.
    assert choose_taxpayer([respelt._replace(dob_level="missing")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([respelt._replace(dob_level="keying_error")], POLICY) is ReasonCode.BELOW_THRESHOLD
    surname_keyed_wrong = STRONG._replace(last_name_level="different", dob_level="missing", tin_level="exact")
    assert isinstance(choose_taxpayer([surname_keyed_wrong], POLICY), Choice)
    assert choose_taxpayer([surname_keyed_wrong._replace(tin_level="missing")], POLICY) is ReasonCode.BELOW_THRESHOLD
    # Neither name agreeing: the TIN, birth date and a fully corroborating address must all agree
    # (names swapped and keyed wrong); a weakly corroborating address or no birth date is not enough.
    scrambled = respelt._replace(last_name_level="different")
    assert isinstance(choose_taxpayer([scrambled], POLICY), Choice)
    assert choose_taxpayer([scrambled._replace(address_level="street_only")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([scrambled._replace(dob_level="keying_error")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([scrambled._replace(tin_level="missing")], POLICY) is ReasonCode.BELOW_THRESHOLD
    # Both loosely, a gender variant counting as loose with the TIN: no date of birth needed.
    variant = STRONG._replace(first_name_level="gender_variant", dob_level="missing", tin_level="exact")
    assert isinstance(choose_taxpayer([variant], POLICY), Choice)
    assert choose_taxpayer([variant._replace(tin_level="missing", dob_level="exact")], POLICY) is (
        ReasonCode.BELOW_THRESHOLD
    )
    # The TIN never lifts the address rule: a ZIP alone corroborates nothing.
    assert choose_taxpayer([respelt._replace(address_level="zip_only")], POLICY) is ReasonCode.BELOW_THRESHOLD


def test_a_return_filed_without_a_given_name_needs_surname_birth_date_and_address_to_agree() -> None:
    nameless = STRONG._replace(first_name_level="missing")
    choice = choose_taxpayer([nameless], POLICY)
    assert isinstance(choice, Choice)
    assert choice.evidence == "name=first_missing;address=exact;dob=exact"
    assert choose_taxpayer([nameless._replace(dob_level="missing")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert isinstance(choose_taxpayer([nameless._replace(dob_level="missing", tin_level="exact")], POLICY), Choice)
    assert choose_taxpayer([nameless._replace(last_name_level="fuzzy")], POLICY) is ReasonCode.BELOW_THRESHOLD
    assert choose_taxpayer([nameless._replace(address_level="street_only")], POLICY) is ReasonCode.BELOW_THRESHOLD
    # Beside a taxpayer of that name at that address, born that day, it could be either: not one.
    named = STRONG._replace(return_id=2, tin="987654321")
    assert choose_taxpayer([named, scored(nameless, 0.99)], POLICY) is ReasonCode.AMBIGUOUS
