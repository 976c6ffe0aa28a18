"""Stream a population and its requests to CSV: master, requests, truth and meta.

Request slots are drawn up front as positions on the person counter; households are then
built one at a time, and each takes the requests whose position it has reached. Only the
plan, a few counters and a short ring of recent requests live in memory.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, deque
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from taxmatch.io.master import MASTER_COLUMNS
from taxmatch.records import REQUEST_COLUMNS
from taxmatch.synth.addresses import AddressBook
from taxmatch.synth.cases import CASES_BY_NAME, DUPLICATE, Case, case_counts
from taxmatch.synth.keyed import DEFAULT_NOISE, NOISE_MODELS, VARIATIONS_COLUMN, KeyedRequestFactory, truth_case
from taxmatch.synth.population import Household, Person, Population
from taxmatch.synth.requests import TRUTH_COLUMNS, Built, RequestFactory

_RECENT = 64


@dataclass(frozen=True)
class SynthSummary:
    out_dir: Path
    people: int  # persons generated (at least the number asked for)
    households: int
    returns: int
    requests: int
    cases: dict[str, int]
    outcomes: dict[str, int]


def _plan(rng: random.Random, people: int, requests: int) -> list[tuple[int, str]]:
    names = [name for name, count in case_counts(requests).items() for _ in range(count)]
    rng.shuffle(names)
    positions = sorted(rng.randrange(max(people, 1)) for _ in names)
    return list(zip(positions, names, strict=True))


def _eligible(households: list[Household]) -> list[Person]:
    return [p for h in households for p in h.members if p.files and not p.confusable]


def generate(
    out_dir: Path,
    people: int,
    requests: int,
    seed: int = 7,
    as_of: date | None = None,
    noise: str = DEFAULT_NOISE,
) -> SynthSummary:
    """Write master.csv, requests.csv, truth.csv and meta.json for a synthetic population.

    `noise` names how requests are written (see NOISE_MODELS); the population is the same under
    every model. Under `keyed`, truth.csv has a `variations` column and meta.json a `noise` key;
    the default model's files stay as they always were.
    """
    if noise not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {noise!r}: choose one of {', '.join(NOISE_MODELS)}")
    keyed = noise != DEFAULT_NOISE
    as_of = as_of or date.today()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Separate streams, so that a change in how requests are drawn leaves the population alone.
    population_rng = random.Random(f"taxmatch-synth:{seed}:population")
    request_rng = random.Random(f"taxmatch-synth:{seed}:requests")
    book = AddressBook.create(random.Random(f"taxmatch-synth:{seed}:zips"))
    book.rng = population_rng
    population = Population(population_rng, book, as_of)
    factory = (KeyedRequestFactory if keyed else RequestFactory)(request_rng, book, as_of)
    plan = _plan(request_rng, people, requests)

    persons = households_made = returns = 0
    returns_by_year: Counter[int] = Counter()
    returns_by_role: Counter[str] = Counter()
    cases: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    recent: deque[list[str]] = deque(maxlen=_RECENT)
    pending: list[Case] = []
    next_slot = 0
    request_number = 0

    with (
        (out_dir / "master.csv").open("w", newline="", encoding="utf-8") as master_file,
        (out_dir / "requests.csv").open("w", newline="", encoding="utf-8") as requests_file,
        (out_dir / "truth.csv").open("w", newline="", encoding="utf-8") as truth_file,
    ):
        master = csv.writer(master_file, lineterminator="\n")
        request_writer = csv.writer(requests_file, lineterminator="\n")
        truth = csv.writer(truth_file, lineterminator="\n")
        master.writerow(MASTER_COLUMNS)
        request_writer.writerow(REQUEST_COLUMNS)
        truth.writerow((*TRUTH_COLUMNS, VARIATIONS_COLUMN) if keyed else TRUTH_COLUMNS)

        def emit(row: list[str], case: Case, built: Built | None) -> None:
            nonlocal request_number
            case_name = truth_case(case.name) if keyed else case.name
            outcome = case.outcome
            if built is None:
                # An exact copy of an earlier request, id included.
                line = [row[0], DUPLICATE.outcome, "", "", DUPLICATE.code, DUPLICATE.name]
            else:
                request_number += 1
                row[0] = f"RQ{request_number:08d}"
                recent.append(row)
                outcome = built.outcome
                line = [row[0], built.outcome, built.tin, built.year, built.codes, case_name]
            truth.writerow([*line, ";".join(built.variations) if built else ""] if keyed else line)
            request_writer.writerow(row)
            cases[case_name] += 1
            outcomes[outcome] += 1

        while persons < people or pending or next_slot < len(plan):
            while next_slot < len(plan) and plan[next_slot][0] <= persons:
                pending.append(CASES_BY_NAME[plan[next_slot][1]])
                next_slot += 1
            structural = next((c for c in pending if c.kind not in ("any", "duplicate")), None)
            if structural is not None:
                pending.remove(structural)
            kind, feature = (structural.kind, structural.feature) if structural else ("random", "")
            built_households = population.build(kind, feature)
            for household in built_households:
                households_made += 1
                persons += len(household.members)
                for year, row in population.rows(household):
                    master.writerow(row)
                    returns += 1
                    returns_by_year[year] += 1
                    returns_by_role[row[2]] += 1
            if structural is not None:
                household = next(h for h in built_households if h.target is not None)
                assert household.target is not None
                built = factory.build(structural, household, household.target)
                emit(built.row, structural, built)
            targets = _eligible(built_households)
            still: list[Case] = []
            for case in pending:
                if case.kind == "duplicate" and not recent and len(pending) == 1 and next_slot == len(plan):
                    # A tiny batch whose first request would be a repeat: nothing to repeat yet.
                    case = CASES_BY_NAME["clean"]
                if case.kind == "any" and targets:
                    person = request_rng.choice(targets)
                    owner = next(h for h in built_households if person in h.members)
                    built = factory.build(case, owner, person)
                    emit(built.row, case, built)
                elif case.kind == "duplicate" and recent:
                    emit(list(request_rng.choice(recent)), case, None)
                else:
                    still.append(case)
            pending = still

    meta: dict[str, object] = {
        "seed": seed,
        "people": people,
        "persons": persons,
        "households": households_made,
        "requests": requests,
        "as_of": as_of.isoformat(),
        "cases": dict(sorted(cases.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "returns": {
            "total": returns,
            "by_year": {str(year): count for year, count in sorted(returns_by_year.items())},
            "by_role": dict(sorted(returns_by_role.items())),
        },
    }
    if keyed:
        meta["noise"] = noise
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return SynthSummary(out_dir, persons, households_made, returns, sum(cases.values()), dict(cases), dict(outcomes))


def read_truth(path: Path) -> list[dict[str, str]]:
    """Truth rows in request order (a repeated request_id appears once per occurrence)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [dict(row) for row in csv.DictReader(handle)]
