"""The decision rule: from scored pairs to at most one taxpayer, then to what is disclosed.

Precision before recall. A taxpayer is disclosed only when all of these hold:
- the request's previous address (or a prior address) is corroborated by one of that
  taxpayer's own returns (same house number, same or typo-close street line, same ZIP or city;
  a house number or place keyed wrong only with a date of birth or TIN that agrees, a house
  number keyed wrong also with both names exact);
- nothing given conflicts: a date of birth, a TIN or a Jr/Sr suffix that disagrees vetoes
  the taxpayer, while a likely keying error (one digit off, two digits transposed, day and
  month swapped) is weak agreement, not conflict;
- both given name and surname agree at least loosely (exact, nickname, one of two
  surnames, or a typo; a given name keyed wrong twice only beside an exact date of birth or
  TIN) on the corroborating return; a return filed without a given name
  needs the exact surname, date of birth or TIN, and a corroborating address; with a TIN that
  agrees exactly, an agreeing given name is enough, and an agreeing surname is with a loosely
  agreeing given name or an exact date of birth;
- no other taxpayer at a corroborated address has a name that agrees (the household rule), and
  a Jr/Sr that only one side carries is settled by a date of birth or TIN (else `AMBIGUOUS`);
- the probability that the request means this taxpayer rather than any other candidate found
  (the pairwise odds shared among all unvetoed candidates) reaches the policy threshold;
- the taxpayer filed a return in the requested tax years (the most recent is disclosed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from taxmatch.match.candidates import CandidatePair, ReturnRow, TaxpayerFacts, distinct_pairs
from taxmatch.match.levels import Role, labels_with
from taxmatch.records import Decision, Outcome, ReasonCode, new_decision, new_disclosure
from taxmatch.settings import Policy

# The level sets come from the roles declared with each level (`match.levels`).
CORROBORATING_ADDRESS_LEVELS = labels_with("address", Role.CORROBORATES)
# The same street and house with the place keyed wrong, or the same street and place with the house
# number keyed wrong (or another house number): a neighbour's address as much as a typo of this one,
# so they corroborate only when a date of birth or TIN given in the request agrees exactly as well.
WEAKLY_CORROBORATING_ADDRESS_LEVELS = labels_with("address", Role.CORROBORATES_WITH_DOB_OR_TIN)
# A house number keyed wrong on this street in this place corroborates with the whole name exact as
# well: a neighbour one keying error away who shares given name and surname is rarer than the error
# (the term frequencies weigh how common the name is), and a relative who does is a Jr/Sr, which the
# generation rule settles.
EXACT_NAMES_CORROBORATING_ADDRESS_LEVELS = labels_with("address", Role.CORROBORATES_WITH_EXACT_NAMES)
AGREEING_FIRST_NAME_LEVELS = labels_with("first_name", Role.NAME_AGREES)
AGREEING_LAST_NAME_LEVELS = labels_with("last_name", Role.NAME_AGREES)
# A given name keyed wrong twice: one person's only beside an exact date of birth or TIN.
FIRST_NAME_LEVELS_AGREEING_WITH_DOB_OR_TIN = labels_with("first_name", Role.NAME_AGREES_WITH_DOB_OR_TIN)


@dataclass(frozen=True)
class Choice:
    tin: str
    match_probability: float
    evidence: str


def _vetoes(pair: CandidatePair) -> bool:
    suffix_conflict = bool(pair.request_suffix and pair.return_suffix and pair.request_suffix != pair.return_suffix)
    return pair.dob_level == "different" or pair.tin_level == "different" or suffix_conflict


def _corroborates(pair: CandidatePair) -> bool:
    level = pair.address_level
    return (
        level in CORROBORATING_ADDRESS_LEVELS
        or (level in WEAKLY_CORROBORATING_ADDRESS_LEVELS and (pair.dob_level == "exact" or pair.tin_level == "exact"))
        or (
            level in EXACT_NAMES_CORROBORATING_ADDRESS_LEVELS
            and pair.first_name_level == "exact"
            and pair.last_name_level == "exact"
        )
    )


# A surname that changed (marriage) or was keyed beyond recognition: the given name, the date of
# birth and the address say who it is. Never the given name: twins share surname, birth date and
# address, so a given name that disagrees is the other twin.
SURNAME_CHANGE_FIRST_NAME_LEVELS = labels_with("first_name", Role.GIVEN_NAME_IDENTIFIES)


# With a TIN that agrees exactly, a given name written apart from any agreeing level (a respelling,
# an OCR error, Charlesa for Charles) is still loose agreement: see `_tin_identifies`.
TIN_LOOSE_FIRST_NAME_LEVELS = (
    AGREEING_FIRST_NAME_LEVELS
    | FIRST_NAME_LEVELS_AGREEING_WITH_DOB_OR_TIN
    | labels_with("first_name", Role.NAME_AGREES_WITH_TIN)
    | {"gender_variant", "initial"}
)


def _tin_identifies(pair: CandidatePair) -> bool:
    """A TIN that agrees exactly names the taxpayer; the name rule then only guards against a TIN
    written on the wrong person's request.

    The name rule exists because twins, spouses and housemates share a surname, an address and
    sometimes a date of birth; they never share a TIN (another taxpayer's is a veto). With the TIN
    exact, what is left to fear is a relative's TIN copied onto the request: a relative shares the
    surname, not the given name. So a given name that agrees is enough (the surname may have
    changed or been keyed beyond recognition); a surname that agrees needs the given name to agree
    at least loosely (a gender variant or an initial counts then) or an exact date of birth. A TIN,
    a date of birth and an address that all agree exactly or nearly so are three identifiers of one
    person: the names then were ordered or keyed wrong (`Hu Ssein Joor` for `Noor Hussein`), and a
    relative's identifiers copied onto the request would have passed with the family surname anyway.
    """
    if pair.tin_level != "exact":
        return False
    last_agrees = pair.last_name_level in AGREEING_LAST_NAME_LEVELS
    return (
        pair.first_name_level in AGREEING_FIRST_NAME_LEVELS
        or (last_agrees and pair.first_name_level in TIN_LOOSE_FIRST_NAME_LEVELS)
        or (last_agrees and pair.dob_level == "exact")
        or (pair.dob_level == "exact" and pair.address_level in CORROBORATING_ADDRESS_LEVELS)
    )


def _names_agree(pair: CandidatePair) -> bool:
    if _tin_identifies(pair):
        return True
    if pair.first_name_level == "missing":
        # A return filed without a given name (a request always has one): the surname, a date of
        # birth or TIN and the address must then all agree exactly or nearly so.
        return (
            pair.last_name_level == "exact"
            and (pair.dob_level == "exact" or pair.tin_level == "exact")
            and pair.address_level in CORROBORATING_ADDRESS_LEVELS
        )
    if pair.first_name_level in FIRST_NAME_LEVELS_AGREEING_WITH_DOB_OR_TIN:
        # With an exact TIN, `_tin_identifies` has answered already.
        return pair.last_name_level in AGREEING_LAST_NAME_LEVELS and pair.dob_level == "exact"
    if pair.first_name_level not in AGREEING_FIRST_NAME_LEVELS:
        return False
    return pair.last_name_level in AGREEING_LAST_NAME_LEVELS or (
        pair.first_name_level in SURNAME_CHANGE_FIRST_NAME_LEVELS
        and pair.dob_level == "exact"
        and pair.address_level in CORROBORATING_ADDRESS_LEVELS
    )


def _as_close_a_name(other: CandidatePair, best: CandidatePair) -> bool:
    """The other taxpayer's name agrees with the request, and no less exactly than the best one's.

    Jon at the address does not make a request for John (who is also there) ambiguous; a second
    John, or a Jon when the request says Jonn, does.
    """
    if not _names_agree(other):
        return False
    first_less = best.first_name_level == "exact" and other.first_name_level != "exact"
    last_less = best.last_name_level == "exact" and other.last_name_level != "exact"
    return not (first_less or last_less)


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
    if pair.tin_level != "missing":
        parts.append(f"tin={pair.tin_level}")
    if pair.request_suffix and pair.request_suffix == pair.return_suffix:
        parts.append("suffix=exact")
    return ";".join(parts)


# A taxpayer whose strongest pair has log2 odds below this is no candidate at all: its share of
# the probability is below 2^-20 (one in a million) and it can neither veto nor compete. The batch
# query drops such taxpayers before they reach Python; this rule makes both paths agree.
MIN_CANDIDATE_WEIGHT = -20.0


def strong_enough(pairs: Sequence[CandidatePair]) -> list[CandidatePair]:
    """The pairs of the taxpayers whose strongest pair reaches MIN_CANDIDATE_WEIGHT, one per
    distinct piece of evidence: what the batch query keeps, kept alike by the Python scorers."""
    strongest: dict[tuple[int, str], float] = {}
    for pair in pairs:
        key = (pair.request_index, pair.tin)
        strongest[key] = max(pair.match_weight, strongest.get(key, -math.inf))
    return distinct_pairs([pair for pair in pairs if strongest[(pair.request_index, pair.tin)] >= MIN_CANDIDATE_WEIGHT])


GENERATIONAL_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV", "V"})
# A child named after a parent is born at least this many years after them.
MIN_GENERATION_GAP_YEARS = 14


def _could_be_other_generation(best: TaxpayerFacts | None, namesake: TaxpayerFacts | None) -> bool:
    """Whether a namesake with a Jr/Sr could be the best taxpayer's father or son.

    A Jr carries his father's whole name, middle name included, and is a generation younger; so
    a middle initial that differs on every return, or dates of birth too close for a parent
    and child, make two unrelated people — unless they ever filed from one address (then they
    are assumed related, whatever their returns say). What is unknown links them.
    """
    if best is None or namesake is None or best.addresses & namesake.addresses:
        return True
    if best.middle_initials and namesake.middle_initials and not best.middle_initials & namesake.middle_initials:
        return False
    gaps = [abs(ours - theirs) for ours in best.birth_years for theirs in namesake.birth_years]
    return not (gaps and all(gap < MIN_GENERATION_GAP_YEARS for gap in gaps))


def _generation_confirmed(best: CandidatePair) -> bool:
    return best.dob_level in ("exact", "keying_error") or best.tin_level in ("exact", "keying_error")


def _is_suffixed_namesake(pair: CandidatePair, best: CandidatePair, vetoed: set[str]) -> bool:
    return (
        pair.tin != best.tin
        and pair.tin not in vetoed
        and pair.first_name_level == "exact"
        and pair.last_name_level == "exact"
        and pair.return_suffix in GENERATIONAL_SUFFIXES
    )


def _generation_unconfirmed(
    best: CandidatePair, pairs: Sequence[CandidatePair], vetoed: set[str], facts: Mapping[str, TaxpayerFacts]
) -> bool:
    """A Jr/Sr that the request does not settle.

    A return that says SR implies a JR (who may not file, or file elsewhere), so when any
    return of the best taxpayer — or of an unvetoed namesake found anywhere who could be his
    father or son (`_could_be_other_generation`; without facts, any) — carries a generational
    suffix the request does not repeat, or the request carries one no such return repeats, only
    a date of birth or TIN that agrees can say which generation is meant.
    """
    if _generation_confirmed(best):
        return False
    if best.request_suffix not in GENERATIONAL_SUFFIXES and not any(
        pair.return_suffix in GENERATIONAL_SUFFIXES for pair in pairs
    ):
        return False  # no Jr/Sr on either side: nothing to settle (most requests; the rest below)
    best_facts = facts.get(best.tin)
    same_name = [
        pair
        for pair in pairs
        if pair.tin == best.tin
        or (_is_suffixed_namesake(pair, best, vetoed) and _could_be_other_generation(best_facts, facts.get(pair.tin)))
    ]
    on_returns = {pair.return_suffix for pair in same_name} & GENERATIONAL_SUFFIXES
    requested = {best.request_suffix} & GENERATIONAL_SUFFIXES
    if requested:
        return not requested <= {pair.return_suffix for pair in pairs if pair.tin == best.tin}
    return bool(on_returns)


def _posterior(best_weight: float, other_weights: Sequence[float]) -> float:
    """P(the best taxpayer is the one requested | every candidate found), at most one being right.

    Pairwise match weights are log2 odds against the prior of one random taxpayer; with several
    candidates the odds are shared: p = 2^w / (1 + sum of 2^w_i), computed relative to the best.
    """
    rest = sum(math.pow(2.0, weight - best_weight) for weight in other_weights)
    return 1.0 / (1.0 + math.pow(2.0, -best_weight) + rest)


@dataclass(frozen=True)
class _Ranking:
    pairs: list[CandidatePair]
    vetoed: set[str]
    strongest: dict[str, CandidatePair]
    ranked: list[CandidatePair]  # the strongest corroborated pair of each unvetoed taxpayer, best first


_BY_RETURN_ID = attrgetter("return_id")
_BY_TIN = attrgetter("tin")
_BY_WEIGHT = attrgetter("match_weight")


def _strongest_first(pairs: Iterable[CandidatePair], tie_break: Callable[[CandidatePair], Any]) -> list[CandidatePair]:
    """By match weight, highest first; equal weights by `tie_break`, lowest first.

    `sorted(pairs, key=lambda pair: (-pair.match_weight, tie_break(pair)))` in two stable sorts
    by C-level keys (a sort with reverse=True keeps equal keys in order): a batch sorts 500k
    pairs, and a Python key function per pair was a fifth of choosing.
    """
    return sorted(sorted(pairs, key=tie_break), key=_BY_WEIGHT, reverse=True)


def _rank(pairs: Sequence[CandidatePair], policy: Policy) -> _Ranking | ReasonCode:
    strongest_weight: dict[str, float] = {}
    for pair in pairs:
        if pair.match_weight > strongest_weight.get(pair.tin, -math.inf):
            strongest_weight[pair.tin] = pair.match_weight
    pairs = [pair for pair in pairs if strongest_weight[pair.tin] >= MIN_CANDIDATE_WEIGHT]
    if not any(pair.match_probability >= policy.candidate_floor for pair in pairs):
        return ReasonCode.NO_CANDIDATE
    vetoed = {pair.tin for pair in pairs if _vetoes(pair)}
    strongest: dict[str, CandidatePair] = {}
    corroborated: dict[str, CandidatePair] = {}
    for pair in _strongest_first(pairs, _BY_RETURN_ID):
        if pair.tin in vetoed:
            continue
        strongest.setdefault(pair.tin, pair)
        if _corroborates(pair):
            corroborated.setdefault(pair.tin, pair)
    ranked = _strongest_first(corroborated.values(), _BY_TIN)
    if not ranked or ranked[0].match_probability < policy.candidate_floor:
        return ReasonCode.BELOW_THRESHOLD
    return _Ranking(pairs, vetoed, strongest, ranked)


def generation_facts_wanted(pairs: Sequence[CandidatePair], policy: Policy) -> frozenset[str]:
    """The TINs whose `TaxpayerFacts` could change `choose_taxpayer`'s answer for these pairs.

    Empty unless the best taxpayer is unconfirmed by date of birth or TIN, the request has no
    suffix of its own, and some namesake found elsewhere carries a Jr/Sr: then the best and
    those namesakes.
    """
    ranking = _rank(pairs, policy)
    if isinstance(ranking, ReasonCode):
        return frozenset()
    best = ranking.ranked[0]
    if _generation_confirmed(best) or best.request_suffix in GENERATIONAL_SUFFIXES:
        return frozenset()
    namesakes = {pair.tin for pair in ranking.pairs if _is_suffixed_namesake(pair, best, ranking.vetoed)}
    return frozenset({best.tin, *namesakes}) if namesakes else frozenset()


def choose_taxpayer(
    pairs: Sequence[CandidatePair], policy: Policy, facts: Mapping[str, TaxpayerFacts] | None = None
) -> Choice | ReasonCode:
    """The one taxpayer a request points to, or the reason there is none.

    `facts` (from `generation_facts_wanted`'s TINs) lets the generation rule pass over namesakes
    who cannot be the best taxpayer's Jr/Sr; without them every suffixed namesake counts.
    """
    ranking = _rank(pairs, policy)
    if isinstance(ranking, ReasonCode):
        return ranking
    pairs, vetoed, strongest, ranked = ranking.pairs, ranking.vetoed, ranking.strongest, ranking.ranked
    best = ranked[0]
    # The household rule: another taxpayer at a corroborated address whose name agrees as well,
    # with nothing given (date of birth, TIN, suffix) that vetoes them, cannot be told apart from
    # the best by what the request says, whatever the probabilities are.
    if any(_as_close_a_name(other, best) for other in ranked[1:]) or _generation_unconfirmed(
        best, pairs, vetoed, facts or {}
    ):
        return ReasonCode.AMBIGUOUS
    if not _names_agree(best):
        return ReasonCode.BELOW_THRESHOLD
    others = [pair.match_weight for tin, pair in strongest.items() if tin != best.tin]
    probability = _posterior(best.match_weight, others)
    if probability < policy.match_threshold:
        return ReasonCode.AMBIGUOUS if best.match_probability >= policy.match_threshold else ReasonCode.BELOW_THRESHOLD
    return Choice(best.tin, probability, _evidence(best))


def disclose(
    request_id: str, choice: Choice, returns: Sequence[ReturnRow], tax_years: tuple[int, int], policy: Policy
) -> Decision:
    """Taxpayer identity from the most recent return in the requested period (returns: newest first)."""
    first_year, last_year = tax_years
    in_period = [row for row in returns if first_year <= row.tax_year <= last_year]
    if not in_period:
        return Decision(request_id, Outcome.NOT_MATCHED, (ReasonCode.NO_RETURN_IN_PERIOD,))
    latest = in_period[0]
    # Disclosure's fields in order (new_disclosure skips the frozen dataclass's slow __init__).
    disclosure = new_disclosure(
        latest.tin[-4:],  # tin_last4
        latest.first_name,
        latest.middle_name,
        latest.last_name,
        latest.suffix,
        latest.street,
        latest.unit,
        latest.city,
        latest.state,
        latest.zip,
        latest.tax_year,
        choice.match_probability,
        choice.evidence,
        latest.tin,
        latest.phone if policy.disclose_phone else "",
    )
    return new_decision(request_id, Outcome.DISCLOSED, (), disclosure, "")
