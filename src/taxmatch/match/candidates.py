"""What scoring hands to the decision rule: scored pairs and the returns of a taxpayer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple


class CandidatePair(NamedTuple):
    """One scored (request input row, return) pair, as the decision rule needs it.

    A named tuple, not a dataclass: a batch makes millions of them, and a tuple is built in C.
    """

    request_index: int
    return_id: int
    tin: str
    match_probability: float
    # log2 odds (prior included); what the decision rule compares across candidates
    match_weight: float
    first_name_level: str
    last_name_level: str
    dob_level: str
    address_level: str
    tin_level: str
    request_suffix: str
    return_suffix: str
    request_tin: str


def distinct_pairs(pairs: list[CandidatePair]) -> list[CandidatePair]:
    """One pair per distinct piece of evidence, ordered by request and return.

    A taxpayer who filed from one address under one name for seven years yields seven pairs that
    differ only in which return they came from; the decision rule reads each the same way. The
    one with the lowest return id stands for them (the batch query does the same in SQL, in the
    same order: request, return, strongest first).
    """
    kept: dict[CandidatePair, CandidatePair] = {}
    for pair in pairs:
        key = pair._replace(return_id=0)
        current = kept.get(key)
        if current is None or pair.return_id < current.return_id:
            kept[key] = pair
    return sorted(kept.values(), key=lambda pair: (pair.request_index, pair.return_id, -pair.match_weight))


@dataclass(frozen=True)
class ReturnRow:
    return_id: int
    tin: str
    tax_year: int
    role: str
    first_name: str
    middle_name: str
    last_name: str
    suffix: str
    street: str
    unit: str
    city: str
    state: str
    zip: str
    phone: str


@dataclass(frozen=True)
class TaxpayerFacts:
    """What a taxpayer's returns say beyond one pair: every address filed from (zip5|house number),
    every year of birth and every middle initial. The generation rule reads them to tell the best
    taxpayer's own Jr/Sr from an unrelated namesake who happens to carry a suffix."""

    addresses: frozenset[str]
    birth_years: frozenset[int]
    middle_initials: frozenset[str]


def taxpayer_facts_of(rows: Iterable[tuple[Any, Any, Any, Any]]) -> dict[str, TaxpayerFacts]:
    """(tin, key_address, dob, middle_initial) rows of master profiles folded into each TIN's facts:
    how both engines' `taxpayer_facts` turn what they read into facts."""
    found: dict[str, tuple[set[str], set[int], set[str]]] = {}
    for tin, address, dob, middle_initial in rows:
        addresses, birth_years, middle_initials = found.setdefault(str(tin), (set(), set(), set()))
        if address:
            addresses.add(str(address))
        if dob:
            birth_years.add(int(str(dob)[:4]))
        if middle_initial:
            middle_initials.add(str(middle_initial))
    return {
        tin: TaxpayerFacts(frozenset(addresses), frozenset(years), frozenset(initials))
        for tin, (addresses, years, initials) in found.items()
    }
