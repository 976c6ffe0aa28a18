"""Explanations read from the decision path: every request of a synthetic batch, one lookup at a time."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.explain import best_probability_words
from taxmatch.io.requests import Item, outcome_request_id, read_requests
from taxmatch.pipeline import decide_and_explain, decide_requests
from taxmatch.records import Outcome, ReasonCode
from taxmatch.settings import Policy
from taxmatch.synth import generate

AS_OF = datetime.date(2026, 11, 25)
# What each deciding rule implies: the outcome and, when not disclosed, the reason code.
IMPLIED = {
    "validation": {Outcome.REJECTED},
    "no_candidate": {ReasonCode.NO_CANDIDATE},
    "not_corroborated": {ReasonCode.BELOW_THRESHOLD},
    "household": {ReasonCode.AMBIGUOUS},
    "generation": {ReasonCode.AMBIGUOUS},
    "names_disagree": {ReasonCode.BELOW_THRESHOLD},
    "probability_below_threshold": {ReasonCode.AMBIGUOUS, ReasonCode.BELOW_THRESHOLD},
    "confident_match": {Outcome.DISCLOSED},
    "no_return_in_period": {ReasonCode.NO_RETURN_IN_PERIOD},
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[DuckDBEngine, list[Item]]:
    data: Path = tmp_path_factory.mktemp("explain")
    generate(data, people=800, requests=400, seed=23, as_of=AS_OF)
    engine = DuckDBEngine(duckdb.connect())
    engine.load_master([data / "master.csv"], lambda problem: None)
    engine.fit_model()
    items = list(read_requests(data / "requests.csv"))
    seen: set[str] = set()
    unique = []
    for item in items:  # a lookup is a single request: repeated ids are a batch matter
        if outcome_request_id(item) not in seen:
            seen.add(outcome_request_id(item))
            unique.append(item)
    return engine, unique


def test_every_explanation_names_the_rule_that_decided(batch: tuple[DuckDBEngine, list[Item]]) -> None:
    engine, items = batch
    policy = Policy.default()
    as_batch = decide_requests(engine, policy, AS_OF, items)  # the batch query, not the point path
    rules: Counter[str] = Counter()
    for item, batch_decision in zip(items, as_batch, strict=True):
        (decision,), (explanation,) = decide_and_explain(engine, policy, AS_OF, [item])
        assert decide_requests(engine, policy, AS_OF, [item]) == [decision], "observing changed the decision"
        assert decision == batch_decision, "a lookup decides as the batch does, reasons words included"
        rule = explanation["deciding_rule"]["rule"]
        rules[rule] += 1
        implied = IMPLIED[rule]
        assert decision.outcome in implied or decision.reason_codes[0] in implied, (rule, decision)
        for candidate in explanation["candidates"]:
            terms = sum(term["match_weight"] for term in candidate["comparisons"])
            total = candidate["prior_match_weight"] + terms + candidate["term_frequency_adjustment"]
            assert total == pytest.approx(candidate["match_weight"], abs=1e-5)
            assert {term["comparison"] for term in candidate["comparisons"]} == {
                "first_name", "last_name", "dob", "address", "tin",
            }  # fmt: skip
        chosen = [candidate for candidate in explanation["candidates"] if candidate["chosen"]]
        if decision.outcome is Outcome.DISCLOSED:
            assert decision.disclosure is not None and len(chosen) == 1
            assert explanation["disclosed"]["candidate"] == chosen[0]["candidate"]
            assert explanation["probability"] == round(decision.disclosure.match_probability, 6)
            assert not chosen[0]["vetoed"] and chosen[0]["address_corroborated"] and chosen[0]["names_agree"]
        else:
            assert explanation["disclosed"] is None
        if decision.outcome is Outcome.NOT_MATCHED:
            best = explanation["best_match_probability"]
            if decision.reason_codes == (ReasonCode.NO_RETURN_IN_PERIOD,):
                best = explanation["probability"]
            assert decision.reasons_text.endswith(best_probability_words(best)), decision.reasons_text
    assert rules["confident_match"] > 100 and rules["validation"] > 10 and rules["no_candidate"] > 3
    assert rules["household"] + rules["probability_below_threshold"] + rules["not_corroborated"] > 3, rules


def test_best_probability_words() -> None:
    assert best_probability_words(0.81234567) == "best match probability 0.812346"
    assert best_probability_words(None) == "best match probability: no candidate found"
