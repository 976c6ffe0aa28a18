"""One way through: read -> validate -> standardize/block/score -> decide -> disclose -> record.

`decide_requests` is the single decision path; the batch command, `lookup` and the HTTP
API all call it, which is what makes their answers the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import hashlib
import json
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from taxmatch import __version__
from taxmatch.engine.interface import (
    ChoosesWhereItScores,
    MatchingEngine,
    ScoredPairs,
    renumbered,
    request_input_table,
)
from taxmatch.explain import ExplanationRecorder, best_probability_words, explanation_of
from taxmatch.io.outcome_formats import OUTPUT_FORMATS, OutcomeFiles, OutputFormat, outcome_writer
from taxmatch.io.outcomes import (
    MANIFEST_FILENAME,
    StagedOutcomesMissingError,
    publish_outcomes,
    sha256_file,
    staging_directory,
    write_manifest,
)
from taxmatch.io.requests import Item, outcome_request_id, read_requests
from taxmatch.ledger import DEFAULT_LEGAL_BASIS, Appended, EventColumns, Ledger, LedgerEvent, disclosed_fields
from taxmatch.ledger.batch_explanations import ScoringRecorder, save_scoring
from taxmatch.ledger.batch_runs import BatchRun, BatchRuns, purge_stale_staging, rerun_batch_id
from taxmatch.ledger.model import utc_timestamp
from taxmatch.match.candidates import CandidatePair, TaxpayerFacts
from taxmatch.match.decide import Choice, choose_taxpayer, disclose, generation_facts_wanted
from taxmatch.parallel import MIN_ITEMS_TO_SPLIT, can_fork, here_and_forked, in_two_processes
from taxmatch.records import Decision, MalformedRecord, Outcome, ReasonCode, RequestRecord
from taxmatch.settings import Policy

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from taxmatch.validate import validate_request
from taxmatch.validate.tax_period import parse_tax_years

# Requests validated and scored together: bounds the pairs held at once. Each chunk's query pays
# fixed costs (staging, one pass over the master per blocking key), so smaller chunks cost more
# than the overlap of validating one while DuckDB scores another saves (measured at 1M people).
SCORING_CHUNK_ITEMS = 100_000

Progress = Callable[[str, int, int], None]
# What the decision of one scored request was made from: its item index, its candidate pairs, the
# taxpayer facts the generation rule read (if any) and the choice. `decide_requests(observe=...)`
# hands these to an explanation (`taxmatch.explain`): the scoring path itself, not a re-run of it.
Observer = Callable[[int, Sequence[CandidatePair], "Mapping[str, TaxpayerFacts]", "Choice | ReasonCode"], None]
# (item index, request, its choice, the best match probability among its candidate pairs or None)
_Chosen = list[tuple[int, RequestRecord, "Choice | ReasonCode", float | None]]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def decide_requests(
    engine: MatchingEngine,
    policy: Policy,
    as_of: datetime.date,
    items: Sequence[Item],
    progress: Progress = _no_progress,
    processes: int = 1,
    observe: Observer | None = None,
) -> list[Decision]:
    """Exactly one decision per item, in input order.

    A request not matched says, in its `detail` (the `reasons` words), the best match probability
    among its candidates (`taxmatch.explain.best_probability_words`). `observe`, if given, is
    called with what each scored request was decided from.

    `processes=2` lets a large single chunk validate and choose in two processes (a batch run
    from the command line; not the server, whose threads a fork would copy).

    Chunk by chunk: validate (this thread), then score and choose (one worker thread). While
    the worker scores chunk k in DuckDB, which releases the GIL, this thread validates chunk
    k+1. Every engine call runs on the worker, one at a time, so the connection needs no lock;
    the decisions do not depend on the chunking. A single chunk (a lookup) runs on this thread.
    """
    decisions: list[Decision | None] = [None] * len(items)
    seen_ids: set[str] = set()
    chosen: list[tuple[int, RequestRecord, Choice]] = []
    scored = valid_total = 0

    def take(results: _Chosen) -> None:
        for index, request, choice, best_probability in results:
            if isinstance(choice, Choice):
                chosen.append((index, request, choice))
            else:
                decisions[index] = Decision(
                    outcome_request_id(request), Outcome.NOT_MATCHED, (choice,), None,
                    best_probability_words(best_probability),
                )  # fmt: skip

    periods: dict[int, tuple[int, int]] = {}

    def wanted_returns() -> list[tuple[int, str, int, int]]:
        for index, request, _ in chosen:
            years = parse_tax_years(request.tax_years)
            assert years is not None, "validation guarantees a tax period"
            periods[index] = years
        return [(index, choice.tin, *periods[index]) for index, _, choice in chosen]

    if len(items) <= SCORING_CHUNK_ITEMS:
        # One chunk (every lookup): nothing to overlap, and a worker thread per call would cost a
        # lookup ~0.3-0.6 ms (start, two hand-offs, join). Same steps, on this thread.
        to_score, inputs = _validate_chunk(items, 0, len(items), policy, as_of, seen_ids, decisions, processes)
        progress("validated", len(items), len(items))
        take(_score_and_choose(engine, policy, to_score, processes, inputs, observe))
        progress("scored", len(to_score), len(to_score))
        latest = engine.latest_returns(wanted_returns())
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="taxmatch-engine") as engine_thread:
            in_flight: deque[tuple[int, Future[_Chosen]]] = deque()

            def collect() -> None:
                nonlocal scored
                count, future = in_flight.popleft()
                take(future.result())
                scored += count
                progress("scored", scored, max(valid_total, scored))

            for start in range(0, len(items), SCORING_CHUNK_ITEMS):
                to_score, _ = _validate_chunk(
                    items, start, start + SCORING_CHUNK_ITEMS, policy, as_of, seen_ids, decisions
                )
                valid_total += len(to_score)
                progress("validated", min(start + SCORING_CHUNK_ITEMS, len(items)), len(items))
                in_flight.append(
                    (len(to_score), engine_thread.submit(_score_and_choose, engine, policy, to_score, 1, None, observe))
                )
                # One chunk queued behind the one scoring is enough to keep the worker busy.
                while len(in_flight) > 2:
                    collect()
            while in_flight:
                collect()
            # One read of the disclosed returns for the whole batch, not one per chunk.
            latest = engine_thread.submit(engine.latest_returns, wanted_returns()).result()
    for index, request, choice in chosen:
        decision = disclose(outcome_request_id(request), choice, latest[index], periods[index], policy)
        if decision.outcome is Outcome.NOT_MATCHED:
            # NO_RETURN_IN_PERIOD: a confident match whose taxpayer filed nothing in the period.
            decision = dataclasses.replace(decision, detail=best_probability_words(choice.match_probability))
        decisions[index] = decision

    assert all(decision is not None for decision in decisions)
    return [decision for decision in decisions if decision is not None]


def decide_and_explain(
    engine: MatchingEngine, policy: Policy, as_of: datetime.date, items: Sequence[Item]
) -> tuple[list[Decision], list[dict[str, Any]]]:
    """`decide_requests`, and each decision's explanation, read from what it was decided from."""
    recorder = ExplanationRecorder()
    decisions = decide_requests(engine, policy, as_of, items, observe=recorder)
    return decisions, explanations(engine, policy, decisions, recorder)


def explanations(
    engine: MatchingEngine, policy: Policy, decisions: Sequence[Decision], recorder: ExplanationRecorder
) -> list[dict[str, Any]]:
    """The explanation of each of `decisions`, from what `recorder` observed while they were decided."""
    # The model's weights only if something was scored: a rejected request needs no master.
    prior, weights = engine.scoring_weights() if recorder.observed else (0.0, {})
    return [
        explanation_of(decision, recorder.observed.get(index), policy, prior, weights)
        for index, decision in enumerate(decisions)
    ]


def _first_choices(
    part: tuple[Sequence[Sequence[CandidatePair]], Policy],
) -> list[tuple[Choice | ReasonCode, frozenset[str]]]:
    """Each request's choice without generation facts, and the TINs whose facts could change it."""
    pair_lists, policy = part
    choices: list[tuple[Choice | ReasonCode, frozenset[str]]] = []
    for pairs in pair_lists:
        choice = choose_taxpayer(pairs, policy)
        wanted = generation_facts_wanted(pairs, policy) if choice is ReasonCode.AMBIGUOUS else frozenset()
        choices.append((choice, wanted))
    return choices


def _validation_codes(
    part: tuple[Sequence[Item], Policy, datetime.date],
) -> list[tuple[ReasonCode, ...] | None]:
    """What `validate_request` says of each request (None for a malformed record)."""
    items, policy, as_of = part
    return [tuple(validate_request(item, policy, as_of)) if isinstance(item, RequestRecord) else None for item in items]


def valid_requests(path: Path, policy: Policy, as_of: datetime.date) -> list[tuple[int, RequestRecord]]:
    """The requests of a file that pass validation, with their position (what `model train` reads).

    The first of a repeated id is kept; malformed records and invalid requests are left out.
    """
    items = list(read_requests(path))
    codes_of = _validation_codes((items, policy, as_of))
    seen: set[str] = set()
    valid: list[tuple[int, RequestRecord]] = []
    for index, (item, codes) in enumerate(zip(items, codes_of, strict=True)):
        request_id = outcome_request_id(item)
        if isinstance(item, RequestRecord) and codes == () and request_id not in seen:
            seen.add(request_id)
            valid.append((index, item))
    return valid


def _score_and_choose(
    engine: MatchingEngine,
    policy: Policy,
    to_score: list[tuple[int, RequestRecord]],
    processes: int = 1,
    inputs: pa.Table | None = None,
    observe: Observer | None = None,
) -> _Chosen:
    """Score a chunk of valid requests and choose each one's taxpayer (or say why none).

    With `processes=2` and enough requests, half of the requests' pairs are made into Python
    objects and chosen from in a forked process (`taxmatch.parallel`): that is pure Python,
    and DuckDB leaves the second core idle meanwhile.
    """
    if isinstance(engine, ChoosesWhereItScores):
        decided_there = _chosen_where_scored(engine, policy, to_score, inputs, observe)
        if decided_there is not None:
            return decided_there
    indexes = [index for index, _ in to_score]
    scored: ScoredPairs | None = None
    if processes > 1 and len(to_score) >= MIN_ITEMS_TO_SPLIT:
        scored = engine.score_batch(inputs if inputs is not None else request_input_table(to_score))
        half = len(indexes) // 2
        first_pairs, second_pairs = scored.split_before(indexes[half])
        first, second = in_two_processes(
            _first_choices_of_scored, (first_pairs, indexes[:half], policy), (second_pairs, indexes[half:], policy)
        )
        choices = _from_plain(first + second)
        best = scored.best_probabilities()

        def pairs_of(wanted: list[int]) -> dict[int, list[CandidatePair]]:
            return _pairs_by_request(scored.of_requests(wanted).pairs(), wanted)
    else:
        pairs_by_request = _pairs_by_request(engine.score(to_score), indexes)
        choices = _first_choices(([pairs_by_request[index] for index in indexes], policy))
        best = {
            index: max(pair.match_probability for pair in pairs) for index, pairs in pairs_by_request.items() if pairs
        }

        def pairs_of(wanted: list[int]) -> dict[int, list[CandidatePair]]:
            return pairs_by_request

    decided = _decided_with_facts(engine, policy, to_score, choices, pairs_of)
    if observe is not None:
        facts_read = engine.taxpayer_facts({tin for _, wanted in choices for tin in wanted})
        if isinstance(observe, ScoringRecorder) and scored is not None:
            # A batch's recorder keeps the pairs as the scorer returned them (Arrow), not as objects.
            observe.take_scored(scored)
            for index, _, choice in decided:
                observe.take_choice(index, facts_read, choice)
        else:
            observed = pairs_of(indexes)
            for index, _, choice in decided:
                observe(index, observed[index], facts_read, choice)
    return [(index, request, choice, best.get(index)) for index, request, choice in decided]


def _chosen_where_scored(
    engine: ChoosesWhereItScores,
    policy: Policy,
    to_score: list[tuple[int, RequestRecord]],
    inputs: pa.Table | None,
    observe: Observer | None,
) -> _Chosen | None:
    """A chunk the engine decides where it scores it (Spark's executors): only its choices come
    back, with the pairs and facts they were made from for the observer. None: decide it here."""
    decided = engine.score_and_choose(inputs if inputs is not None else request_input_table(to_score), policy)
    if decided is None:
        return None
    if isinstance(observe, ScoringRecorder):
        observe.take_scored(decided.scored)
        for index, _ in to_score:
            observe.take_choice(index, decided.facts, decided.choices[index])
    elif observe is not None:
        observed = _pairs_by_request(decided.scored.pairs(), [index for index, _ in to_score])
        for index, _ in to_score:
            observe(index, observed[index], decided.facts, decided.choices[index])
    best = decided.scored.best_probabilities()
    return [(index, request, decided.choices[index], best.get(index)) for index, request in to_score]


def _decided_with_facts(
    engine: MatchingEngine,
    policy: Policy,
    to_score: list[tuple[int, RequestRecord]],
    choices: list[tuple[Choice | ReasonCode, frozenset[str]]],
    pairs_of: Callable[[list[int]], dict[int, list[CandidatePair]]],
) -> list[tuple[int, RequestRecord, Choice | ReasonCode]]:
    decided = [(index, request, choice) for (index, request), (choice, _) in zip(to_score, choices, strict=True)]
    # A request left ambiguous by a Jr/Sr namesake found elsewhere is decided again with what the
    # master says of those namesakes (one read for the chunk): most cannot be the best's Jr/Sr.
    facts_wanted: set[str] = set()
    for _, wanted in choices:
        facts_wanted |= wanted
    facts = engine.taxpayer_facts(facts_wanted)
    if not facts:
        return decided
    # Only where facts could change the answer (`generation_facts_wanted` is not empty).
    again = {index for (index, _), (_, wanted) in zip(to_score, choices, strict=True) if wanted}
    ambiguous = pairs_of(sorted(again))
    return [
        (index, request, choose_taxpayer(ambiguous[index], policy, facts) if index in again else choice)
        for index, request, choice in decided
    ]


def _pairs_by_request(pairs: list[CandidatePair], indexes: Sequence[int]) -> dict[int, list[CandidatePair]]:
    pairs_by_request: dict[int, list[CandidatePair]] = {index: [] for index in indexes}
    for pair in pairs:
        pairs_by_request[pair.request_index].append(pair)
    return pairs_by_request


# A first choice as plain tuples and strings: what a forked process sends back. Pickling the
# Choice and ReasonCode objects themselves cost ~0.14 s for 50k requests; this, ~1 ms.
_PlainChoice = tuple[tuple[str, float, str] | str, tuple[str, ...]]


def _first_choices_of_scored(part: tuple[ScoredPairs, Sequence[int], Policy]) -> list[_PlainChoice]:
    scored, indexes, policy = part
    pairs_by_request = _pairs_by_request(scored.pairs(), indexes)
    return [
        ((choice.tin, choice.match_probability, choice.evidence) if isinstance(choice, Choice) else choice.value,
         tuple(wanted))
        for choice, wanted in _first_choices(([pairs_by_request[index] for index in indexes], policy))
    ]  # fmt: skip


def _from_plain(plain: list[_PlainChoice]) -> list[tuple[Choice | ReasonCode, frozenset[str]]]:
    return [
        (ReasonCode(choice) if isinstance(choice, str) else Choice(*choice), frozenset(wanted))
        for choice, wanted in plain
    ]


def _validate_chunk(
    items: Sequence[Item],
    start: int,
    stop: int,
    policy: Policy,
    as_of: datetime.date,
    seen_ids: set[str],
    decisions: list[Decision | None],
    processes: int = 1,
) -> tuple[list[tuple[int, RequestRecord]], pa.Table | None]:
    """Reject what fails validation (in `decisions`); return the rest, with their item index, to score.

    `seen_ids` carries over from chunk to chunk, in input order: the first of a repeated id wins.
    Every request is validated, in two processes with `processes=2` (a repeated id is then
    validated too, and its verdict unused: validation is pure, so nothing else changes). Each
    process also builds the scoring input rows of its valid requests; joined, they are the
    `request_input_table` of what is returned (else None: the scoring builds it).
    """
    stop = min(stop, len(items))
    inputs: pa.Table | None = None
    if processes > 1 and stop - start >= MIN_ITEMS_TO_SPLIT:
        middle = (start + stop) // 2
        (first, first_inputs), (second, second_inputs) = in_two_processes(
            _validated_half, (items[start:middle], start, policy, as_of), (items[middle:stop], middle, policy, as_of)
        )
        codes_of = first + second
        inputs = pa.concat_tables([first_inputs, second_inputs])
    else:
        codes_of = _validation_codes((items[start:stop], policy, as_of))
    to_score: list[tuple[int, RequestRecord]] = []
    for index in range(start, stop):
        item = items[index]
        request_id = outcome_request_id(item)
        if isinstance(item, MalformedRecord):
            decisions[index] = Decision(
                request_id, Outcome.REJECTED, (ReasonCode.MALFORMED_RECORD,), detail=item.problem
            )
            if item.request_id:
                seen_ids.add(item.request_id)
            continue
        if request_id in seen_ids:
            decisions[index] = Decision(request_id, Outcome.REJECTED, (ReasonCode.DUPLICATE_REQUEST_ID,))
            continue
        seen_ids.add(request_id)
        codes = codes_of[index - start]
        if codes:
            decisions[index] = Decision(request_id, Outcome.REJECTED, codes)
        else:
            to_score.append((index, item))
    if inputs is not None:
        if inputs.num_rows and len(to_score) < sum(codes == () for codes in codes_of):
            # Valid, but a repeated id: rejected above, so not scored.
            scored = pa.array([index for index, _ in to_score], type=pa.int64())
            inputs = inputs.filter(pc.is_in(inputs["request_index"], scored))
        inputs = renumbered(inputs)
    return to_score, inputs


def _validated_half(
    part: tuple[Sequence[Item], int, Policy, datetime.date],
) -> tuple[list[tuple[ReasonCode, ...] | None], pa.Table]:
    """`_validation_codes` of items numbered from `first_index`, and the scoring input rows of
    those that pass (`request_input_table`, numbered within the half)."""
    items, first_index, policy, as_of = part
    codes_of = _validation_codes((items, policy, as_of))
    valid = [
        (first_index + position, item)
        for position, (item, codes) in enumerate(zip(items, codes_of, strict=True))
        if codes == () and isinstance(item, RequestRecord)
    ]
    return codes_of, request_input_table(valid)


@dataclass(frozen=True)
class Accounting:
    """Who asked, in which batch: what the ledger records beside each decision."""

    agency: str
    batch_id: str
    actor: str
    model_version: str


def ledger_events(
    items: Sequence[Item], decisions: Sequence[Decision], accounting: Accounting, policy: Policy
) -> list[LedgerEvent]:
    return [
        LedgerEvent.from_decision(
            decision,
            agency=accounting.agency,
            batch_id=accounting.batch_id,
            statute=(item.statute or "") if isinstance(item, RequestRecord) else "",
            policy_version=policy.version,
            model_version=accounting.model_version,
            actor=accounting.actor,
            policy=policy,
        )
        for item, decision in zip(items, decisions, strict=True)
    ]


def ledger_columns(
    items: Sequence[Item], decisions: Sequence[Decision], accounting: Accounting, policy: Policy
) -> EventColumns:
    """The events of `ledger_events`, by column: what a batch appends (`Ledger.append_columns`).

    Decisions come from `decide_requests`, so their outcomes are `Outcome`s and only a
    disclosure names a taxpayer; `EventColumns` checks that again per column.
    """
    disclosed = Outcome.DISCLOSED
    released = disclosed_fields(policy)
    code_values: dict[tuple[ReasonCode, ...], tuple[str, ...]] = {}
    for codes in {decision.reason_codes for decision in decisions}:
        code_values[codes] = tuple(code.value for code in codes)
    # A disclosure is recorded only with its disclosed return (as LedgerEvent.from_decision does).
    disclosures = [decision.disclosure if decision.outcome is disclosed else None for decision in decisions]
    return EventColumns(
        agency=accounting.agency,
        actor=accounting.actor,
        batch_id=accounting.batch_id,
        legal_basis=DEFAULT_LEGAL_BASIS,
        policy_version=policy.version,
        model_version=accounting.model_version,
        request_ids=[decision.request_id for decision in decisions],
        outcomes=[decision.outcome.value for decision in decisions],
        reason_codes=[code_values[decision.reason_codes] for decision in decisions],
        statutes=[(item.statute or "") if isinstance(item, RequestRecord) else "" for item in items],
        fields_disclosed=[released if disclosure is not None else () for disclosure in disclosures],
        taxpayer_tins=[disclosure.tin if disclosure is not None else "" for disclosure in disclosures],
    )


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    out_dir: Path
    counts: dict[str, int]
    manifest_path: Path
    seconds: float
    # The batch this one re-runs (`--rerun`), if any.
    repeats: str | None = None
    # True when this call recorded nothing: it put in place the files of a batch that an
    # interrupted run had already recorded in the ledger.
    finished_interrupted: bool = False
    # Staging directories of earlier runs killed before their ledger commit, deleted by this one.
    removed_staging: int = 0


class BatchAlreadyCompletedError(RuntimeError):
    """The batch id has been recorded and its outcome files put in place; `--rerun` repeats it."""


class BatchIncompleteError(RuntimeError):
    """A recorded batch whose outcome files cannot be made again as they were recorded."""


class BatchOutputError(RuntimeError):
    """The output directory cannot hold the batch's files; found before anything is decided or recorded."""


def batch_id_for(agency: str, as_of: datetime.date, input_sha256: str, policy: Policy, model_version: str) -> str:
    """Same batch, same id: the id names the inputs, so a re-run is recognizably a re-run."""
    material = "|".join([agency, as_of.isoformat(), input_sha256, policy.version, model_version])
    return "b-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


@contextlib.contextmanager
def _cyclic_collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a batch builds its millions of objects.

    They are tuples, records and decisions without reference cycles, but every 700 allocations
    the collector walks the young ones, and each full collection walks them all: at 100k requests
    that was 1.3-1.7 s of a 15 s batch, collecting nothing. Reference counting still frees
    everything as usual, and the collector is back on when the batch is recorded.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        # Straight into the oldest generation: left young, every object made while paused
        # would be walked by the first collection after (0.3 s at 100k requests). The oldest
        # generation is walked only once it has grown by a quarter, as it always is.
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def run_batch(
    engine: MatchingEngine,
    policy: Policy,
    ledger: Ledger,
    signer: Ed25519PrivateKey,
    input_path: Path,
    agency: str,
    as_of: datetime.date,
    out_dir: Path | None,
    default_out_root: Path,
    actor: str = "cli",
    progress: Progress = _no_progress,
    rerun: bool = False,
    output_format: OutputFormat = "csv",
    processes: int | None = None,
) -> BatchResult:
    """Decide every request, account for the outcomes in the ledger, then put the files in place.

    The outcome files and manifest are written to a staging directory beside the target; the
    ledger entries and the batch's `BatchRuns` row commit in one transaction; only then are the
    files renamed into place (`publish_outcomes`). A run killed before the commit leaves
    nothing final (its staging directory is removed by the next run); one killed after it
    leaves a batch recorded in the ledger that running the same command again finishes,
    without a second entry. A batch id that completed is refused (`BatchAlreadyCompletedError`)
    unless `rerun`, which records a new batch, `<id>-r<N>`, naming the one it repeats.

    `processes`: 1 keeps every step in this process (the server, whose threads a fork would
    copy); by default a large batch validates and renders in two (`taxmatch.parallel`).
    """
    started = time.perf_counter()
    workers = _processes() if processes is None else processes
    model_version, _ = engine.current_model()
    input_sha256 = sha256_file(input_path)
    first_id = batch_id_for(agency, as_of, input_sha256, policy, model_version)
    runs = BatchRuns(ledger)
    runs.ensure_schema()
    # Their files hold personal data and nothing in them is final.
    removed_staging = len(purge_stale_staging(runs, default_out_root))
    batch_id, repeats = first_id, None
    if runs.is_accounted(first_id):
        if rerun:
            number, latest = runs.latest_rerun(first_id)
            if latest is not None and latest.status != "complete":
                finished = _finish_recorded(
                    engine, policy, ledger, signer, runs, latest, input_path, started, progress, workers
                )
                return dataclasses.replace(finished, removed_staging=removed_staging)
            batch_id, repeats = rerun_batch_id(first_id, number + 1), first_id
        else:
            recorded = runs.get(first_id)
            if recorded is not None and recorded.status != "complete":
                finished = _finish_recorded(
                    engine, policy, ledger, signer, runs, recorded, input_path, started, progress, workers
                )
                return dataclasses.replace(finished, removed_staging=removed_staging)
            where = f"; its outputs are in {recorded.out_dir}" if recorded is not None else ""
            raise BatchAlreadyCompletedError(
                f"batch {first_id} (this file, agency {agency}, as of {as_of.isoformat()}, this policy and model) "
                f"has already run and is in the ledger{where}. Running it again would account for every request "
                "twice; use --rerun to record a new batch that repeats it"
            )
    target = out_dir if out_dir is not None else default_out_root / batch_id
    staging = staging_directory(target, batch_id)
    if target.exists() and not target.is_dir():
        raise BatchOutputError(f"--out {target} is a file, not a directory")
    try:
        # A staging directory left by a run killed before its ledger commit: nothing in it is final.
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        runs.note_staging(batch_id, staging)  # before it exists: a kill from here on leaves it noted
        staging.mkdir(mode=0o700)
    except OSError as error:
        runs.forget_staging(staging)
        raise BatchOutputError(f"cannot write the outcome files beside {target}: {error.strerror}") from None
    try:
        with _cyclic_collector_paused():
            items = list(read_requests(input_path))
            progress("read", len(items), len(items))
            # What each scored request was decided from, kept for its explanation (ledger/batch_explanations.py).
            scoring = ScoringRecorder()
            decisions = decide_requests(engine, policy, as_of, items, progress, workers, observe=scoring)
            accounting = Accounting(agency, batch_id, actor, model_version)
            with ledger.transaction():
                if runs.is_accounted(batch_id):  # never two outcomes of one request in one batch
                    raise BatchAlreadyCompletedError(f"batch {batch_id} is already in the ledger")
                writer = outcome_writer(staging, policy.extra_disclosed_columns, output_format)
                appended, rendered = _append_and_render(ledger, items, decisions, accounting, policy, writer, workers)
                if scoring.scored:
                    save_scoring(ledger.con, batch_id, scoring, model_version)
                counts = _write_staged(writer, rendered, len(decisions))
                if appended is None:  # an empty batch appends nothing
                    head_seq, head_hash = ledger.head()
                    recorded_at = utc_timestamp(ledger.clock())
                else:
                    head_seq, head_hash, recorded_at = appended.last_seq, appended.head_hash, appended.recorded_at
                manifest: dict[str, Any] = {
                    "batch_id": batch_id,
                    "repeats": repeats,
                    "agency": agency,
                    "as_of": as_of.isoformat(),
                    "input": {"file": input_path.name, "sha256": input_sha256, "records": len(items)},
                    "counts": counts,
                    "policy_version": policy.version,
                    "model_version": model_version,
                    "taxmatch_version": __version__,
                    "outputs": _output_hashes(writer),
                    "ledger_head": {"seq": head_seq, "hash": head_hash},
                    # When the batch was recorded: what `taxmatch purge --older-than` judges its files by.
                    "written_at": recorded_at,
                }
                write_manifest(staging, manifest)
                runs.record(BatchRun(batch_id, repeats, agency, target, staging, manifest, "recorded", recorded_at))
    except BaseException:
        # Nothing of it is final: the staging directory goes with it.
        shutil.rmtree(staging, ignore_errors=True)
        # Left noted if the database cannot say it now (the next run deletes a noted directory anyway).
        with contextlib.suppress(Exception):
            runs.forget_staging(staging)
        raise
    # Committed: from here on the batch is accounted for, and only putting its files in place is left.
    progress("recorded", len(decisions), len(decisions))
    ledger.checkpoint(signer)
    _publish_recorded(runs, BatchRun(batch_id, repeats, agency, target, staging, manifest, "recorded", recorded_at))
    return BatchResult(
        batch_id, target, counts, target / MANIFEST_FILENAME, time.perf_counter() - started, repeats=repeats,
        removed_staging=removed_staging,
    )  # fmt: skip


def _processes() -> int:
    return 2 if can_fork() else 1


def _append_and_render(
    ledger: Ledger,
    items: Sequence[Item],
    decisions: Sequence[Decision],
    accounting: Accounting,
    policy: Policy,
    writer: OutcomeFiles,
    processes: int,
) -> tuple[Appended | None, Any]:
    """Append the batch's entries (no commit) and render its outcome files; in two processes when large."""

    def append_entries() -> Appended | None:
        return ledger.append_columns(ledger_columns(items, decisions, accounting, policy))

    def render() -> Any:
        return writer.render(decisions)

    if processes > 1 and len(decisions) >= MIN_ITEMS_TO_SPLIT:
        # The outcome files' text is pure Python: it is made beside the ledger append.
        return here_and_forked(append_entries, render)
    return append_entries(), render()


def _write_staged(writer: OutcomeFiles, rendered: Any, total: int) -> dict[str, int]:
    """The three outcome files, complete and synced, in the staging directory; their counts."""
    with writer:
        writer.write_rendered(rendered)
    counts = dict(writer.counts)
    counts["total"] = total
    return counts


def _output_hashes(writer: OutcomeFiles) -> dict[str, str]:
    return {path.name: sha256_file(path) for path in sorted(writer.paths().values(), key=lambda path: path.name)}


def _recorded_format(manifest: dict[str, Any]) -> OutputFormat:
    """The format a recorded batch wrote its outcome files in, read off their names in the manifest."""
    suffixes = {name.rsplit(".", 1)[-1] for name in manifest["outputs"]}
    for output_format in OUTPUT_FORMATS:
        if suffixes == {output_format}:
            return output_format
    raise BatchIncompleteError(f"batch {manifest['batch_id']}: its manifest names outcome files of no one format")


def _publish_recorded(runs: BatchRuns, run: BatchRun) -> None:
    publish_outcomes(run.staging_dir, run.out_dir, run.manifest)
    runs.mark_complete(run.batch_id)
    runs.forget_staging(run.staging_dir)


def _finish_recorded(
    engine: MatchingEngine,
    policy: Policy,
    ledger: Ledger,
    signer: Ed25519PrivateKey,
    runs: BatchRuns,
    run: BatchRun,
    input_path: Path,
    started: float,
    progress: Progress,
    processes: int,
) -> BatchResult:
    """Put in place the files of a batch that the ledger records but whose run was interrupted.

    From its staging directory when that survived (the normal case: it is complete before the
    ledger commit); otherwise the decisions are made again (same input, policy and model: the
    batch id says so) and must give the very files the manifest recorded. Nothing is appended.
    """
    manifest = run.manifest
    try:
        _publish_recorded(runs, run)
    except StagedOutcomesMissingError:
        items = list(read_requests(input_path))
        as_of = datetime.date.fromisoformat(str(manifest["as_of"]))
        decisions = decide_requests(engine, policy, as_of, items, progress, processes)
        shutil.rmtree(run.staging_dir, ignore_errors=True)
        run.staging_dir.parent.mkdir(parents=True, exist_ok=True)
        run.staging_dir.mkdir(mode=0o700)
        writer = outcome_writer(run.staging_dir, policy.extra_disclosed_columns, _recorded_format(manifest))
        _write_staged(writer, writer.render(decisions), len(items))
        made = _output_hashes(writer)
        if made != manifest["outputs"]:
            shutil.rmtree(run.staging_dir, ignore_errors=True)
            raise BatchIncompleteError(
                f"batch {run.batch_id} is recorded in the ledger but its outcome files are not in {run.out_dir}, "
                "and deciding it again does not give the files it recorded"
            ) from None
        write_manifest(run.staging_dir, manifest)
        _publish_recorded(runs, run)
    ledger.checkpoint(signer)
    counts = {key: int(value) for key, value in manifest["counts"].items()}
    return BatchResult(
        run.batch_id, run.out_dir, counts, run.out_dir / MANIFEST_FILENAME, time.perf_counter() - started,
        repeats=run.repeats, finished_interrupted=True,
    )  # fmt: skip


def decision_as_json(decision: Decision, extra_disclosed_columns: Sequence[str] = ()) -> dict[str, Any]:
    """The API/lookup shape: {request_id, outcome, reason_codes, disclosure}; `tin` and `phone` in
    the disclosure only where the policy releases them (`Policy.extra_disclosed_columns`)."""
    disclosure: dict[str, Any] | None = None
    if decision.disclosure is not None:
        d = decision.disclosure
        disclosure = {
            "request_id": decision.request_id,
            "tin_last4": d.tin_last4,
            "first_name": d.first_name,
            "middle_name": d.middle_name,
            "last_name": d.last_name,
            "suffix": d.suffix,
            "street": d.street,
            "unit": d.unit,
            "city": d.city,
            "state": d.state,
            "zip": d.zip,
            "tax_year": d.tax_year,
            "match_probability": round(d.match_probability, 6),
            "evidence": d.evidence,
            **{column: getattr(d, column) for column in extra_disclosed_columns},
        }
    return {
        "request_id": decision.request_id,
        "outcome": decision.outcome.value,
        "reason_codes": [code.value for code in decision.reason_codes],
        "reasons": decision.reasons_text,
        "disclosure": disclosure,
    }


def dumps_decision(decision: Decision, extra_disclosed_columns: Sequence[str] = ()) -> str:
    return json.dumps(decision_as_json(decision, extra_disclosed_columns), indent=2, ensure_ascii=False)
