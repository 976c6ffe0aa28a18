"""One suite over both engines (DESIGN.md section 2): the same inputs give byte-identical outcome
files on DuckDB and on Spark, through the real command (`taxmatch --engine ...`)."""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxmatch.cli import app
from taxmatch.database import open_database
from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.engine.interface import ChoosesWhereItScores, EngineOptions, open_engine, request_input_table
from taxmatch.io.requests import read_requests
from taxmatch.match.candidates import CandidatePair, TaxpayerFacts
from taxmatch.match.decide import Choice, generation_facts_wanted
from taxmatch.pipeline import decide_requests, valid_requests
from taxmatch.records import ReasonCode, RequestRecord
from taxmatch.settings import Policy, Workspace
from taxmatch.synth import generate

AS_OF = "2026-11-25"
OUTCOME_FILES = ("disclosed.csv", "rejected.csv", "unmatched.csv")
# Spark in local mode on two cores, as CI has: `local[*]` would ask for every core of a big machine.
SPARK_MASTER = "local[2]"


def taxmatch(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


# Namesakes with a Jr elsewhere (as in tests/match/test_hard_cases.py): a request for the father
# is first AMBIGUOUS, and is decided again with what the master says of the Jr (the generation
# facts), which on Spark is a second pass on the executors.
# (tin, first, middle, last, suffix, dob, street, city, state, zip)
NAMESAKES = (
    ("903275146", "Walter", "James", "Brennan", "", "1990-05-14", "611 Adams St", "Peoria", "IL", "61602"),
    ("905416278", "Walter", "Lee", "Brennan", "JR", "1993-08-02", "1930 State St", "Rockford", "IL", "61102"),
    ("907138452", "Ambrose", "Dale", "Kettering", "", "1950-11-20", "4020 Mesa St", "El Paso", "TX", "79902"),
    ("902593716", "Ambrose", "Dale", "Kettering", "JR", "1978-04-09", "2215 Avenue Q", "Lubbock", "TX", "79411"),
)
# (request id, which namesake is asked for, whether the request gives the date of birth)
NAMESAKE_REQUESTS = (("RQ-JR-1", 0, False), ("RQ-JR-2", 2, False), ("RQ-JR-3", 2, True), ("RQ-JR-4", 1, False))


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 people and 150 requests: more request rows than the point path takes (64), so a batch
    is scored by the engine's batch path (Spark's joins and executors); and the namesakes above."""
    data = tmp_path_factory.mktemp("engines-population")
    generate(data, people=300, requests=150, seed=11, as_of=datetime.date.fromisoformat(AS_OF))
    with (data / "master.csv").open("a", encoding="utf-8", newline="") as master:
        for tin, first, middle, last, suffix, dob, street, city, state, zip_code in NAMESAKES:
            csv.writer(master).writerows(
                [tin, year, "primary", first, middle, last, suffix, dob, street, "", city, state, zip_code, ""]
                for year in range(2019, 2026)
            )
    with (data / "requests.csv").open("a", encoding="utf-8", newline="") as requests:
        for request_id, which, with_dob in NAMESAKE_REQUESTS:
            _, first, _, last, _, dob, street, city, state, zip_code = NAMESAKES[which]
            csv.writer(requests).writerow(
                [request_id, first, "", last, "", dob if with_dob else "", "", street, "", city, state, zip_code,
                 "A123456789", "2024-01-15", "8 U.S.C. 1326", "2021-2025"]
            )  # fmt: skip
    return data


def run_engine(engine: str, population: Path, root: Path) -> tuple[Path, Path]:
    """`master load` then `batch run` with `--engine engine`; the workspace and the output folder.

    Spark writes its warehouse in slices of 400 rows here (of ~1,000 returns), so that the files
    compared were scored from a warehouse written in several (as at 1M people)."""
    home, out = root / "home", root / "out"
    options = ["--engine", engine, "--spark-master", SPARK_MASTER, "--home", str(home)]
    with pytest.MonkeyPatch.context() as patch:
        if engine == "spark":
            from taxmatch.engine import spark_engine

            patch.setattr(spark_engine, "_WAREHOUSE_WRITE_ROWS", 400)
        taxmatch(*options, "master", "load", str(population / "master.csv"))
    taxmatch(
        *options, "batch", "run", str(population / "requests.csv"), "--agency", "ICE", "--as-of", AS_OF,
        "--out", str(out),
    )  # fmt: skip
    return home, out


@pytest.fixture(scope="session")
def duckdb_run(population: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return run_engine("duckdb", population, tmp_path_factory.mktemp("engines-duckdb"))


@pytest.fixture(scope="session")
def engine_run(engine_name: str, population: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return run_engine(engine_name, population, tmp_path_factory.mktemp(f"engines-{engine_name}"))


def test_outcome_files_are_byte_identical_to_duckdb(
    engine_run: tuple[Path, Path], duckdb_run: tuple[Path, Path]
) -> None:
    (_, out), (_, reference) = engine_run, duckdb_run
    for name in OUTCOME_FILES:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    manifest = json.loads((out / "manifest.json").read_text())
    expected = json.loads((reference / "manifest.json").read_text())
    assert manifest["counts"] == expected["counts"]
    assert manifest["model_version"] == expected["model_version"]
    # Every outcome is there: the batch is not all rejected (something was scored and disclosed).
    assert manifest["counts"]["disclosed"] > 50


def test_the_population_has_requests_decided_again_with_generation_facts(
    duckdb_run: tuple[Path, Path], population: Path
) -> None:
    """What makes the byte-identical test cover the second pass of a Spark batch: some requests'
    first choice wants generation facts (held here on the DuckDB workspace)."""
    home, out = duckdb_run
    opened = open_database(Workspace.resolve(home))
    try:
        engine = DuckDBEngine(opened.connection)
        asked = {item.request_id: item for item in read_requests(population / "requests.csv")}
        wanting = []
        for request_id, _, _ in NAMESAKE_REQUESTS:
            request = asked[request_id]
            assert isinstance(request, RequestRecord)
            if generation_facts_wanted(engine.score([(0, request)]), Policy.default()):
                wanting.append(request_id)
        assert wanting, "no request of the population reads generation facts"
    finally:
        opened.connection.close()
    # And the facts settle one of them (Walter Brennan: his Jr elsewhere is a stranger).
    assert "RQ-JR-1" in (out / "disclosed.csv").read_text(encoding="utf-8")


def test_batch_reads_of_returns_and_facts_agree_with_the_point_reads(
    engine_name: str, engine_run: tuple[Path, Path]
) -> None:
    """The engine's reads for many taxpayers (Spark: joins over the warehouse) give what the
    workspace's point reads give for each."""
    home, _ = engine_run
    opened = open_database(Workspace.resolve(home))
    try:
        engine = open_engine(opened.connection, EngineOptions.from_environment(engine_name, SPARK_MASTER), home)
        points = DuckDBEngine(opened.connection)
        tins = [
            str(row[0])
            for row in opened.connection.execute(
                "SELECT DISTINCT tin FROM master_returns ORDER BY 1 LIMIT 100"
            ).fetchall()
        ]
        assert len(tins) > 64  # more than the point reads take: the engine's batch path
        wanted = [(key, tin, 2016 + key % 4, 2025) for key, tin in enumerate(tins)]
        expected_returns = {
            key: points.latest_returns([(key, tin, first, last)])[key] for key, tin, first, last in wanted
        }
        assert engine.latest_returns(wanted) == expected_returns
        assert any(expected_returns.values())
        expected_facts = {
            tin: facts for tin in tins for tin_found, facts in points.taxpayer_facts([tin]).items() if tin_found == tin
        }
        assert engine.taxpayer_facts(tins) == expected_facts
    finally:
        opened.connection.close()


def test_a_batch_on_a_master_loaded_by_another_engine_says_what_to_run(
    engine_name: str, duckdb_run: tuple[Path, Path], population: Path, tmp_path: Path
) -> None:
    """A workspace loaded by DuckDB has no warehouse: one clear line, nothing recorded (the Spark
    session is not even started: the local warehouse is checked first)."""
    if engine_name == "duckdb":
        pytest.skip("the DuckDB engine reads the workspace the load wrote: there is no other store to miss")
    home, _ = duckdb_run
    result = CliRunner().invoke(
        app,
        ["--engine", engine_name, "--home", str(home), "batch", "run", str(population / "requests.csv"),
         "--agency", "CBP", "--as-of", AS_OF, "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "has no master for model" in result.output and "--engine spark master load" in result.output
    assert not (tmp_path / "out").exists()


def test_spark_decides_on_its_executors_what_the_pipeline_decides_on_duckdb(
    engine_name: str, engine_run: tuple[Path, Path], population: Path
) -> None:
    """`score_and_choose` (the decision code run on the executors, and the second pass with the
    generation facts) gives each request the choice, pairs and facts the pipeline's own decision
    gives it over the DuckDB workspace."""
    if engine_name == "duckdb":
        pytest.skip("the DuckDB engine scores in one process and leaves the choice to the pipeline")
    home, _ = engine_run
    policy, as_of = Policy.default(), datetime.date.fromisoformat(AS_OF)
    opened = open_database(Workspace.resolve(home))
    try:
        engine = open_engine(opened.connection, EngineOptions.from_environment(engine_name, SPARK_MASTER), home)
        assert isinstance(engine, ChoosesWhereItScores)
        requests = valid_requests(population / "requests.csv", policy, as_of)
        decided = engine.score_and_choose(request_input_table(requests), policy)
        assert decided is not None
        observed: dict[int, tuple[list[CandidatePair], Choice | ReasonCode]] = {}
        facts_read: dict[str, TaxpayerFacts] = {}

        def observe(index: int, pairs: object, facts: dict[str, TaxpayerFacts], choice: Choice | ReasonCode) -> None:
            assert isinstance(pairs, list)
            observed[index] = (pairs, choice)
            facts_read.update(facts)

        points = DuckDBEngine(opened.connection)
        items = list(read_requests(population / "requests.csv"))
        decide_requests(points, policy, as_of, items, processes=1, observe=observe)
    finally:
        opened.connection.close()
    assert decided.choices == {index: choice for index, (_, choice) in observed.items()}
    pairs_by_request: dict[int, list[CandidatePair]] = {index: [] for index in observed}
    for pair in decided.scored.pairs():
        pairs_by_request[pair.request_index].append(pair)
    assert pairs_by_request == {index: pairs for index, (pairs, _) in observed.items()}
    assert decided.facts == facts_read and facts_read  # the second pass ran, with the same facts
    by_id = {request.request_id: index for index, request in requests}
    assert isinstance(decided.choices[by_id["RQ-JR-1"]], Choice)
