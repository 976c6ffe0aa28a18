"""The decision rule: from scored pairs to at most one taxpayer, then to what is disclosed.

Precision before recall. A taxpayer is disclosed only when all of these hold:
- the request's previous address (or a prior address) is corroborated by one of that
  taxpayer's own returns (same house number, same or typo-close street, same ZIP or city);
- nothing given conflicts: a date of birth, a TIN or a Jr/Sr suffix that disagrees vetoes
  the taxpayer, while a likely keying error (one digit off, two digits transposed, day and
  month swapped) is weak agreement, not conflict;
- both given name and surname agree at least loosely (exact, nickname, one of two
  surnames, or a typo) on the corroborating return;
- the match probability reaches the policy threshold, and no other taxpayer at a
  corroborated address is plausible (second best at or above the candidate floor, or
  within the ambiguity margin of the best: `AMBIGUOUS` — the household rule);
- the taxpayer filed a return in the requested tax years (the most recent is disclosed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taxmatch.match.candidates import CandidatePair, ReturnRow
from taxmatch.records import Decision, Disclosure, Outcome, ReasonCode
from taxmatch.settings import Policy

CORROBORATING_ADDRESS_LEVELS = frozenset({"exact", "street_typo"})
AGREEING_FIRST_NAME_LEVELS = frozenset({"exact", "nickname", "fuzzy"})
AGREEING_LAST_NAME_LEVELS = frozenset({"exact", "one_surname", "fuzzy"})


@dataclass(frozen=True)
class Choice:
    tin: str
    match_probability: float
    evidence: str


def tin_keying_error(given: str, filed: str) -> bool:
    """One digit wrong, or two adjacent digits transposed."""
    if len(given) != len(filed):
        return False
    differences = [position for position, (a, b) in enumerate(zip(given, filed, strict=True)) if a != b]
    if len(differences) == 1:
        return True
    return (
        len(differences) == 2
        and differences[1] == differences[0] + 1
        and given[differences[0]] == filed[differences[1]]
        and given[differences[1]] == filed[differences[0]]
    )


def _tin_level(pair: CandidatePair) -> str:
    if not pair.request_tin:
        return "missing"
    if pair.request_tin == pair.tin:
        return "exact"
    return "keying_error" if tin_keying_error(pair.request_tin, pair.tin) else "different"


def _vetoes(pair: CandidatePair) -> bool:
    suffix_conflict = bool(pair.request_suffix and pair.return_suffix and pair.request_suffix != pair.return_suffix)
    return pair.dob_level == "different" or _tin_level(pair) == "different" or suffix_conflict


def _evidence(pair: CandidatePair) -> str:
    if pair.first_name_level == pair.last_name_level:
        name = pair.first_name_level
    elif pair.last_name_level == "exact":
        name = f"first_{pair.first_name_level}"
    elif pair.first_name_level == "exact":
        name = f"last_{pair.last_name_level}"
    else:
        name = f"first_{pair.first_name_level}+last_{pair.last_name_level}"
    parts = [f"name={name}", f"address={pair.address_level}"]
    if pair.dob_level != "missing":
        parts.append(f"dob={pair.dob_level}")
    tin_level = _tin_level(pair)
    if tin_level != "missing":
        parts.append(f"tin={tin_level}")
    if pair.request_suffix and pair.request_suffix == pair.return_suffix:
        parts.append("suffix=exact")
    return ";".join(parts)


def choose_taxpayer(pairs: Sequence[CandidatePair], policy: Policy) -> Choice | ReasonCode:
    """The one taxpayer a request points to, or the reason there is none."""
    if not any(pair.match_probability >= policy.candidate_floor for pair in pairs):
        return ReasonCode.NO_CANDIDATE
    vetoed = {pair.tin for pair in pairs if _vetoes(pair)}
    best_by_tin: dict[str, CandidatePair] = {}
    for pair in pairs:
        if pair.tin in vetoed or pair.address_level not in CORROBORATING_ADDRESS_LEVELS:
            continue
        current = best_by_tin.get(pair.tin)
        if current is None or (pair.match_probability, -pair.return_id) > (
            current.match_probability,
            -current.return_id,
        ):
            best_by_tin[pair.tin] = pair
    ranked = sorted(best_by_tin.values(), key=lambda pair: (-pair.match_probability, pair.tin))
    if not ranked or ranked[0].match_probability < policy.candidate_floor:
        return ReasonCode.BELOW_THRESHOLD
    best = ranked[0]
    if len(ranked) > 1:
        second = ranked[1].match_probability
        if second >= policy.candidate_floor or second >= best.match_probability - policy.ambiguity_margin:
            return ReasonCode.AMBIGUOUS
    names_agree = (
        best.first_name_level in AGREEING_FIRST_NAME_LEVELS and best.last_name_level in AGREEING_LAST_NAME_LEVELS
    )
    if best.match_probability < policy.match_threshold or not names_agree:
        return ReasonCode.BELOW_THRESHOLD
    return Choice(best.tin, best.match_probability, _evidence(best))


def disclose(
    request_id: str, choice: Choice, returns: Sequence[ReturnRow], tax_years: tuple[int, int], policy: Policy
) -> Decision:
    """Taxpayer identity from the most recent return in the requested period (returns: newest first)."""
    first_year, last_year = tax_years
    in_period = [row for row in returns if first_year <= row.tax_year <= last_year]
    if not in_period:
        return Decision(request_id, Outcome.NOT_MATCHED, (ReasonCode.NO_RETURN_IN_PERIOD,))
    latest = in_period[0]
    disclosure = Disclosure(
        tin_last4=latest.tin[-4:],
        first_name=latest.first_name,
        middle_name=latest.middle_name,
        last_name=latest.last_name,
        suffix=latest.suffix,
        street=latest.street,
        unit=latest.unit,
        city=latest.city,
        state=latest.state,
        zip=latest.zip,
        tax_year=latest.tax_year,
        match_probability=choice.match_probability,
        evidence=choice.evidence,
        tin=latest.tin,
        phone=latest.phone if policy.disclose_phone else "",
    )
    return Decision(request_id, Outcome.DISCLOSED, (), disclosure)
