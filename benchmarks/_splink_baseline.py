"""The reference point for batch_speed.py: the same synthetic data through plain Splink 5 with the
generic person-linkage settings of its tutorials, and no taxmatch code. Prints one JSON line.

    python benchmarks/_splink_baseline.py --data DIR [--threshold 0.999] [--seed 7]

Run by batch_speed.py as its own process, so that its wall time and peak RSS are its own.
Cleaning is what a generic pipeline does (trim, upper case, ZIP5, TIN digits); no nicknames,
surname handling or address standardization. The accuracy it reports is a side result: each
request's best pair at or above the threshold, judged on the TIN alone (the baseline has no notion
of tax years), over the requests that are valid (expected DISCLOSED or NOT_MATCHED).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

U_MAX_PAIRS = 1e6
# Blocked on the identifiers a generic tutorial would use; each leaves other comparisons to learn.
EM_BLOCKING_RULES = (("first_name", "last_name"), ("dob",))
PREDICTION_BLOCKING_RULES = (("last_name", "zip"), ("first_name", "dob"), ("zip", "street"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cleaned(source: str) -> str:
    return f"""
        nullif(upper(trim(first_name)), '') AS first_name,
        nullif(upper(trim(last_name)), '') AS last_name,
        nullif(trim(dob), '') AS dob,
        nullif(upper(trim(street)), '') AS street,
        nullif(left(trim(zip), 5), '') AS zip,
        nullif(regexp_replace(coalesce(tin, ''), '[^0-9]', '', 'g'), '') AS tin
    FROM read_csv('{source}', header = true, all_varchar = true)
    """


def settings(prior: float) -> SettingsCreator:
    return SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.LevenshteinAtThresholds("street", 2),
            cl.ExactMatch("zip"),
        ],
        blocking_rules_to_generate_predictions=[block_on(*columns) for columns in PREDICTION_BLOCKING_RULES],
        probability_two_random_records_match=prior,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["tin", "request_id"],
    )


def score(con: duckdb.DuckDBPyConnection, predictions: str, truth: Path) -> dict[str, Any]:
    """Best pair per request against truth.csv, on the TIN."""
    sql_judged_prefix = f"""
        WITH pairs AS (
            SELECT
                CASE WHEN source_dataset_l = 'requests' THEN request_id_l ELSE request_id_r END AS request_id,
                CASE WHEN source_dataset_l = 'requests' THEN unique_id_l ELSE unique_id_r END AS request_row,
                CASE WHEN source_dataset_l = 'requests' THEN tin_r ELSE tin_l END AS tin,
                match_probability
            FROM {predictions}
        ),
        best AS (
            SELECT request_id, arg_max(tin, match_probability) AS tin
            FROM pairs GROUP BY request_row, request_id
        ),
        truth AS (
            SELECT request_id, "case", expected_outcome,
                regexp_replace(coalesce(expected_tin, ''), '[^0-9]', '', 'g') AS tin
            FROM (
                SELECT *, row_number() OVER (PARTITION BY request_id) AS k
                FROM read_csv('{truth}', header = true, all_varchar = true)
            ) WHERE k = 1 AND expected_outcome IN ('DISCLOSED', 'NOT_MATCHED') AND "case" <> 'no_return_in_period'
        ),
        judged AS (
            SELECT DISTINCT ON (t.request_id) t.request_id, t."case", t.expected_outcome, b.tin AS got,
                b.tin IS NOT NULL AND t.expected_outcome = 'DISCLOSED' AND b.tin = t.tin AS is_right
            FROM truth t LEFT JOIN best b USING (request_id)
        )
    """
    row = con.execute(
        f"""{sql_judged_prefix}
        SELECT
            count(*),
            count(*) FILTER (WHERE expected_outcome = 'DISCLOSED'),
            count(got),
            count(*) FILTER (WHERE is_right),
            count(*) FILTER (WHERE got IS NOT NULL AND NOT is_right),
            count(*) FILTER (WHERE got IS NOT NULL AND expected_outcome = 'NOT_MATCHED')
        FROM judged
        """
    ).fetchone()
    wrong_by_case = con.execute(
        f"""{sql_judged_prefix}
        SELECT "case", count(*) FROM judged WHERE got IS NOT NULL AND NOT is_right GROUP BY 1 ORDER BY 2 DESC, 1
        """
    ).fetchall()
    assert row is not None
    valid, findable, disclosures, correct, wrong, wrong_unfindable = (int(value) for value in row)
    return {
        "scope": "valid requests except no_return_in_period; best pair per request; TIN only",
        "valid_requests": valid,
        "disclosures": disclosures,
        "correct": correct,
        "wrong": wrong,
        "wrong_of_not_matched": wrong_unfindable,
        "wrong_disclosure_rate": round(wrong / disclosures, 6) if disclosures else None,
        "wrong_by_case": {str(case): int(count) for case, count in wrong_by_case},
        "recall": round(correct / findable, 6) if findable else None,
    }


def run(data: Path, threshold: float, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    con = duckdb.connect()
    master_sql = cleaned(str(data / "master.csv"))
    con.execute(
        f"CREATE TABLE master AS SELECT row_number() OVER () AS unique_id, NULL::VARCHAR AS request_id, {master_sql}"
    )
    # Request ids can repeat in a batch; Splink needs a unique id, so rows are numbered.
    requests_sql = cleaned(str(data / "requests.csv"))
    con.execute(f"CREATE TABLE requests AS SELECT row_number() OVER () AS unique_id, request_id, {requests_sql}")
    master_rows = con.execute("SELECT count(*) FROM master").fetchone()
    request_rows = con.execute("SELECT count(*) FROM requests").fetchone()
    assert master_rows is not None and request_rows is not None
    read_seconds = time.perf_counter() - started

    db_api = DuckDBAPI(connection=con)
    requests = db_api.register("requests", dataset_display_name="requests")
    master = db_api.register("master", dataset_display_name="master")
    prior = 1.0 / max(int(master_rows[0]), 2)
    linker = Linker([requests, master], settings(prior), log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=seed)
    for columns in EM_BLOCKING_RULES:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*columns))
    fitted = time.perf_counter()
    log(f"splink: read {read_seconds:.1f}s, fit {fitted - started - read_seconds:.1f}s")

    predictions = linker.inference.predict(threshold_match_probability=threshold)
    pairs = con.execute(f"SELECT count(*) FROM {predictions.physical_name}").fetchone()
    assert pairs is not None
    predicted = time.perf_counter()
    log(f"splink: predict {predicted - fitted:.1f}s, {int(pairs[0]):,} pairs >= {threshold}")

    accuracy = score(con, predictions.physical_name, data / "truth.csv") if (data / "truth.csv").is_file() else None
    return {
        "splink_version": _splink_version(),
        "master_rows": int(master_rows[0]),
        "requests": int(request_rows[0]),
        "threshold": threshold,
        "read_seconds": round(read_seconds, 2),
        "load_fit_seconds": round(fitted - started, 2),
        "predict_seconds": round(predicted - fitted, 2),
        "requests_per_second_predict": round(int(request_rows[0]) / (predicted - fitted), 1),
        "pairs_over_threshold": int(pairs[0]),
        "accuracy": accuracy,
    }


def _splink_version() -> str:
    import splink

    return str(splink.__version__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="A synthetic set (master.csv, requests.csv).")
    parser.add_argument("--threshold", type=float, default=0.999)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for name in ("master.csv", "requests.csv"):
        if not (args.data / name).is_file():
            log(f"error: {args.data / name} is missing")
            return 2
    sys.stdout.write(json.dumps(run(args.data, args.threshold, args.seed), separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
