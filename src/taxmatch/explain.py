"""Why a request was decided as it was: the candidates, each comparison's level and weight, the rule.

An explanation is built from what the decision was made from, handed over by the decision path
itself (`pipeline.decide_requests(observe=...)`, recorded by `ExplanationRecorder`): the very
`CandidatePair`s the scorer produced, the taxpayer facts the generation rule read, and the choice
`match.decide.choose_taxpayer` returned. Nothing is scored again. Each comparison's weight is the
fitted model's weight for the pair's level (`MatchingEngine.scoring_weights`); the term-frequency
adjustment is what the pair's match weight holds beyond the prior and the level weights, so the
waterfall adds up to the scorer's own match weight exactly.

Which rule decided is read with the decision rule's own predicates, in `choose_taxpayer`'s order,
and checked against the choice it actually returned; a test holds the two together on every
request of a synthetic batch. Should they ever disagree, the explanation says so instead of naming
a rule.

Other candidates are never identified: they are letters (A is the strongest), with levels and
weights only, because their identity is not what was disclosed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taxmatch.match import decide
from taxmatch.match.candidates import CandidatePair, TaxpayerFacts
from taxmatch.records import Decision, Outcome, ReasonCode
from taxmatch.settings import Policy

__all__ = ["ExplanationRecorder", "ObservedDecision", "best_probability_words", "explanation_of"]

COMPARISONS: tuple[str, ...] = ("first_name", "last_name", "dob", "address", "tin")
_LEVEL_OF = {
    "first_name": "first_name_level",
    "last_name": "last_name_level",
    "dob": "dob_level",
    "address": "address_level",
    "tin": "tin_level",
}


def best_probability_words(probability: float | None) -> str:
    """The words an unmatched request's `reasons` end with: its best candidate's match probability."""
    if probability is None:
        return "best match probability: no candidate found"
    return f"best match probability {probability:.6f}"


@dataclass(frozen=True)
class ObservedDecision:
    pairs: tuple[CandidatePair, ...]
    facts: Mapping[str, TaxpayerFacts]
    choice: decide.Choice | ReasonCode


@dataclass
class ExplanationRecorder:
    """An observer for `decide_requests`: keeps what each scored request was decided from."""

    observed: dict[int, ObservedDecision] = field(default_factory=dict)

    def __call__(
        self,
        index: int,
        pairs: Sequence[CandidatePair],
        facts: Mapping[str, TaxpayerFacts],
        choice: decide.Choice | ReasonCode,
    ) -> None:
        self.observed[index] = ObservedDecision(tuple(pairs), dict(facts), choice)


@dataclass(frozen=True)
class _Rule:
    name: str
    text: str
    result: ReasonCode | None  # the code this rule implies; None: a match
    probability: float | None = None  # the probability shared among candidates, once computed


def _deciding_rule(observed: ObservedDecision, policy: Policy) -> _Rule:
    """The first rule of `choose_taxpayer` that settles these pairs, read with its own predicates."""
    ranking = decide._rank(observed.pairs, policy)
    if ranking is ReasonCode.NO_CANDIDATE:
        return _Rule(
            "no_candidate",
            f"no taxpayer reached the candidate floor: a match probability of {policy.candidate_floor}",
            ReasonCode.NO_CANDIDATE,
        )
    if isinstance(ranking, ReasonCode):
        return _Rule(
            "not_corroborated",
            "no candidate free of a conflicting date of birth, TIN or suffix has the request's address "
            "corroborated by one of its own returns with a probability at the candidate floor "
            f"({policy.candidate_floor}) or above",
            ranking,
        )
    best = ranking.ranked[0]
    if any(decide._as_close_a_name(other, best) for other in ranking.ranked[1:]):
        return _Rule(
            "household",
            "another taxpayer at a corroborated address has a name that agrees as closely: "
            "nothing in the request tells them apart",
            ReasonCode.AMBIGUOUS,
        )
    if decide._generation_unconfirmed(best, ranking.pairs, ranking.vetoed, observed.facts):
        return _Rule(
            "generation",
            "a Jr/Sr on one side only, which no agreeing date of birth or TIN settles",
            ReasonCode.AMBIGUOUS,
        )
    if not decide._names_agree(best):
        return _Rule(
            "names_disagree",
            "the best candidate's given name and surname do not both agree",
            ReasonCode.BELOW_THRESHOLD,
        )
    others = [pair.match_weight for tin, pair in ranking.strongest.items() if tin != best.tin]
    probability = decide._posterior(best.match_weight, others)
    if probability < policy.match_threshold:
        shared = best.match_probability >= policy.match_threshold
        return _Rule(
            "probability_below_threshold",
            f"the probability that the request means the best candidate, {probability:.6f}, is below the "
            f"threshold {policy.match_threshold}" + (" because other candidates share it" if shared else ""),
            ReasonCode.AMBIGUOUS if shared else ReasonCode.BELOW_THRESHOLD,
            probability,
        )
    return _Rule(
        "confident_match",
        f"one corroborated candidate whose names agree, nothing conflicting, and a probability of {probability:.6f} "
        f"at or above the threshold {policy.match_threshold}",
        None,
        probability,
    )


def _waterfall(
    pair: CandidatePair, prior_weight: float, level_weights: Mapping[str, Mapping[str, float]]
) -> dict[str, Any]:
    comparisons = []
    total = prior_weight
    for name in COMPARISONS:
        level = str(getattr(pair, _LEVEL_OF[name]))
        weight = float(level_weights.get(name, {}).get(level, 0.0))
        total += weight
        comparisons.append(
            {"comparison": name, "level": level, "match_weight": round(weight, 6), "bayes_factor": _factor(weight)}
        )
    adjustment = pair.match_weight - total
    return {
        "prior_match_weight": round(prior_weight, 6),
        "comparisons": comparisons,
        # Rarer names agree more tellingly: what the pair's weight holds beyond the levels' weights.
        "term_frequency_adjustment": round(adjustment, 6),
        "match_weight": round(pair.match_weight, 6),
        "match_probability": round(pair.match_probability, 6),
    }


def _factor(weight: float) -> float:
    # 2^weight, with the same 6 significant digits at every size (a Bayes factor spans 1e-9 to 1e9).
    return float(f"{math.pow(2.0, weight):.6g}")


def explanation_of(
    decision: Decision,
    observed: ObservedDecision | None,
    policy: Policy,
    prior_weight: float,
    level_weights: Mapping[str, Mapping[str, float]],
) -> dict[str, Any]:
    """The `explanation` object of a decision (see docs/matching.md, "Explanations")."""
    disclosed = decision.disclosure if decision.outcome is Outcome.DISCLOSED else None
    if observed is None:
        # Rejected by validation (or a duplicate id): never scored.
        return {
            "candidates": [],
            "deciding_rule": {"rule": "validation", "text": "rejected before matching: " + decision.reasons_text},
            "probability": None,
            "best_match_probability": None,
            "threshold": policy.match_threshold,
            "disclosed": None,
        }
    rule = _deciding_rule(observed, policy)
    actual = observed.choice
    consistent = (rule.result is None and isinstance(actual, decide.Choice)) or rule.result is actual
    by_tin: dict[str, list[CandidatePair]] = {}
    for pair in observed.pairs:
        by_tin.setdefault(pair.tin, []).append(pair)
    order = sorted(
        by_tin, key=lambda tin: (-max(p.match_weight for p in by_tin[tin]), min(p.return_id for p in by_tin[tin]))
    )
    chosen_tin = actual.tin if isinstance(actual, decide.Choice) else None
    candidates = []
    for position, tin in enumerate(order):
        pairs = decide._strongest_first(by_tin[tin], decide._BY_RETURN_ID)
        corroborating = [pair for pair in pairs if decide._corroborates(pair)]
        shown = corroborating[0] if corroborating else pairs[0]
        candidates.append(
            {
                "candidate": _letter(position),
                "chosen": tin == chosen_tin,
                "returns_compared": len(pairs),
                "vetoed": any(decide._vetoes(pair) for pair in pairs),
                "address_corroborated": bool(corroborating),
                "names_agree": decide._names_agree(shown),
                **_waterfall(shown, prior_weight, level_weights),
            }
        )
    best = max((pair.match_probability for pair in observed.pairs), default=None)
    explanation: dict[str, Any] = {
        "candidates": candidates,
        "deciding_rule": {"rule": rule.name, "text": rule.text}
        if consistent
        else {"rule": "unexplained", "text": "the decision rule gave an answer this explanation cannot attribute"},
        "probability": round(actual.match_probability, 6) if isinstance(actual, decide.Choice) else (
            None if rule.probability is None else round(rule.probability, 6)
        ),
        "best_match_probability": None if best is None else round(best, 6),
        "threshold": policy.match_threshold,
        "disclosed": None,
    }  # fmt: skip
    if isinstance(actual, decide.Choice) and decision.outcome is Outcome.NOT_MATCHED:
        explanation["deciding_rule"] = {
            "rule": "no_return_in_period",
            "text": "a confident match, but the taxpayer filed no return in the requested tax years",
        }
    if disclosed is not None:
        from taxmatch.ledger.model import disclosed_fields

        explanation["disclosed"] = {
            "candidate": _letter(order.index(chosen_tin)) if chosen_tin in order else None,
            "fields": list(disclosed_fields(policy)),
            "tax_year": disclosed.tax_year,
            "evidence": disclosed.evidence,
        }
    return explanation


def _letter(position: int) -> str:
    letters = ""
    position += 1
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters
