"""Accuracy on synthetic ground truth, through the real CLI. Prints one JSON line.

    python benchmarks/accuracy.py [--people 20000] [--requests 5000] [--seed 7] [--data DIR]
                                  [--noise household|keyed] [--keep] [--explain N]

Steps: `taxmatch synth` (unless --data holds a set), `taxmatch master load`, `taxmatch batch run`
with --as-of 2026-11-25, then `taxmatch.evaluation.evaluate_batch` against truth.csv. Targets
(DESIGN.md section 7, issue 3): wrong disclosures <= 0.1% overall and <= 0.5% in every case,
recall >= 98% of findable requests, every invalid request caught, calibrated probabilities.
With `--noise keyed` the truth names each request's variations, and the line adds recall and
miss reasons per variation kind (`by_variation_kind`), per variation with its field
(`by_variation`), per number of simultaneous errors (`by_error_count`) and per error for
requests with exactly one (`by_sole_error`, the cleanest reading of what each error costs).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from _common import (
    AGENCY,
    AS_OF,
    DEFAULT_SEED,
    StepFailed,
    StepResult,
    emit,
    ensure_data,
    git_commit,
    log,
    positive_int,
    run_step,
    workspace,
)
from taxmatch.evaluation import evaluate_batch
from taxmatch.synth import DEFAULT_NOISE, NOISE_MODELS, VARIATIONS_COLUMN, variation_kind

# Variations that are not errors: a field left out, or a date in another accepted form.
NOT_ERRORS = ("missing_", "dob_format")

CALIBRATION_FLOOR = 0.99
CALIBRATION_BINS = (0.5, 0.9, 0.99, 0.999, 0.9999)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def first_by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    # evaluate_batch counts the first occurrence of a duplicated id; so do we.
    by_id: dict[str, dict[str, str]] = {}
    for row in rows:
        by_id.setdefault(row["request_id"], row)
    return by_id


def is_right(expected: dict[str, str], disclosure: dict[str, str]) -> bool:
    """The rule of evaluate_batch: outputs carry only the TIN's last four digits, by design."""
    return (
        expected["expected_outcome"] == "DISCLOSED"
        and disclosure["tin_last4"] == expected["expected_tin"][-4:]
        and disclosure["tax_year"] == expected["expected_tax_year"]
    )


def ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def codes(text: str) -> list[str]:
    return [code for code in text.split(";") if code]


def per_case_table(truth: dict[str, dict[str, str]], disclosed: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    expected_outcomes: dict[str, set[str]] = defaultdict(set)
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    for request_id, expected in truth.items():
        case = expected["case"]
        expected_outcomes[case].add(expected["expected_outcome"])
        counts = tally[case]
        counts["n"] += 1
        if expected["expected_outcome"] == "DISCLOSED":
            counts["findable"] += 1
        disclosure = disclosed.get(request_id)
        if disclosure is None:
            continue
        counts["disclosed"] += 1
        counts["correct" if is_right(expected, disclosure) else "wrong"] += 1
    table: dict[str, dict[str, Any]] = {}
    for case in sorted(tally):
        counts = tally[case]
        table[case] = {
            "expected": "/".join(sorted(expected_outcomes[case])),
            "n": counts["n"],
            "disclosed": counts["disclosed"],
            "correct": counts["correct"],
            "wrong": counts["wrong"],
            "wrong_rate": ratio(counts["wrong"], counts["disclosed"]),
            # For cases that should not be disclosed at all, wrong_rate is 1.0 or null; this is the useful rate.
            "wrong_share_of_requests": ratio(counts["wrong"], counts["n"]),
            "recall": ratio(counts["correct"], counts["findable"]),
        }
    return table


def calibration(truth: dict[str, dict[str, str]], disclosed: dict[str, dict[str, str]]) -> dict[str, Any]:
    bins: dict[float, Counter[str]] = {floor: Counter() for floor in CALIBRATION_BINS}
    unparsable = 0
    for request_id, disclosure in disclosed.items():
        try:
            probability = float(disclosure["match_probability"])
        except (KeyError, ValueError):
            unparsable += 1
            continue
        expected = truth.get(request_id)
        right = expected is not None and is_right(expected, disclosure)
        for floor, counts in bins.items():
            if probability >= floor:
                counts["n"] += 1
                counts["right"] += right
    top = bins[CALIBRATION_FLOOR]
    return {
        "min_probability": CALIBRATION_FLOOR,
        "n": top["n"],
        "right": top["right"],
        "right_share": ratio(top["right"], top["n"]),
        "at_least": {str(floor): {"n": c["n"], "right_share": ratio(c["right"], c["n"])} for floor, c in bins.items()},
        "unparsable_probabilities": unparsable,
    }


def not_matched_codes(
    truth: dict[str, dict[str, str]], unmatched: dict[str, dict[str, str]]
) -> dict[str, dict[str, int]]:
    by_case: dict[str, Counter[str]] = defaultdict(Counter)
    for request_id, expected in truth.items():
        if expected["expected_outcome"] != "NOT_MATCHED":
            continue
        row = unmatched.get(request_id)
        for code in codes(row["reason_codes"]) if row else []:
            by_case[expected["case"]][code] += 1
    return {case: dict(counts.most_common()) for case, counts in sorted(by_case.items())}


def missed_codes(
    truth: dict[str, dict[str, str]],
    disclosed: dict[str, dict[str, str]],
    rejected: dict[str, dict[str, str]],
    unmatched: dict[str, dict[str, str]],
) -> dict[str, dict[str, int]]:
    """Why findable requests were not rightly disclosed, per case: the outcome's reason codes."""
    by_case: dict[str, Counter[str]] = defaultdict(Counter)
    for request_id, expected in truth.items():
        if expected["expected_outcome"] != "DISCLOSED":
            continue
        disclosure = disclosed.get(request_id)
        if disclosure is not None:
            if not is_right(expected, disclosure):
                right_person = disclosure["tin_last4"] == expected["expected_tin"][-4:]
                by_case[expected["case"]]["WRONG_TAX_YEAR" if right_person else "WRONG_PERSON"] += 1
            continue
        row = unmatched.get(request_id) or rejected.get(request_id)
        for code in codes(row["reason_codes"]) if row else ["NO_OUTCOME"]:
            by_case[expected["case"]][code] += 1
    return {case: dict(counts.most_common()) for case, counts in sorted(by_case.items())}


def wrong_evidence(truth: dict[str, dict[str, str]], disclosed: dict[str, dict[str, str]]) -> dict[str, dict[str, int]]:
    """The evidence lists behind wrong disclosures, per case."""
    by_case: dict[str, Counter[str]] = defaultdict(Counter)
    for request_id, disclosure in disclosed.items():
        expected = truth.get(request_id)
        if expected is not None and not is_right(expected, disclosure):
            by_case[expected["case"]][disclosure["evidence"]] += 1
    return {case: dict(counts.most_common()) for case, counts in sorted(by_case.items())}


def by_variation(
    truth: dict[str, dict[str, str]],
    disclosed: dict[str, dict[str, str]],
    rejected: dict[str, dict[str, str]],
    unmatched: dict[str, dict[str, str]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Findable requests per variation they carry (a request counts under each of its variations):
    how many, how many rightly disclosed, and why the others were missed."""
    groups: dict[str, dict[str, Counter[str]]] = {
        "by_variation_kind": {},
        "by_variation": {},
        "by_error_count": {},
        "by_sole_error": {},
    }
    for request_id, expected in truth.items():
        if expected["expected_outcome"] != "DISCLOSED":
            continue
        labels = [label for label in expected.get(VARIATIONS_COLUMN, "").split(";") if label]
        errors = [label for label in labels if not label.startswith(NOT_ERRORS)]
        keys = {
            "by_variation_kind": sorted({variation_kind(label) for label in labels} or {"none"}),
            "by_variation": sorted(set(labels) or {"none"}),
            "by_error_count": [str(len(errors))],
            # The one error of a request that has exactly one (missing fields and date forms aside).
            "by_sole_error": [variation_kind(errors[0])] if len(errors) == 1 else [],
        }
        disclosure = disclosed.get(request_id)
        if disclosure is not None:
            outcome = ["CORRECT"] if is_right(expected, disclosure) else ["WRONG_DISCLOSURE"]
        else:
            row = unmatched.get(request_id) or rejected.get(request_id)
            outcome = codes(row["reason_codes"]) if row else ["NO_OUTCOME"]
        for group, names in keys.items():
            for name in names:
                tally = groups[group].setdefault(name, Counter())
                tally["findable"] += 1
                for code in outcome:
                    tally[code] += 1
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for group, tallies in groups.items():
        result[group] = {}
        for name, tally in sorted(tallies.items(), key=lambda item: (-item[1]["findable"], item[0])):
            missed = {code: n for code, n in tally.most_common() if code not in ("findable", "CORRECT")}
            result[group][name] = {
                "findable": tally["findable"],
                "correct": tally["CORRECT"],
                "recall": ratio(tally["CORRECT"], tally["findable"]),
                "missed": tally["findable"] - tally["CORRECT"],
                "missed_codes": missed,
            }
    return result


def explain(
    limit: int,
    truth: dict[str, dict[str, str]],
    requests: dict[str, dict[str, str]],
    disclosed: dict[str, dict[str, str]],
    rejected: dict[str, dict[str, str]],
    unmatched: dict[str, dict[str, str]],
) -> None:
    """Synthetic people only, and only on stderr: stdout stays the one JSON line."""

    def request_text(request_id: str) -> str:
        row = requests.get(request_id, {})
        name = " ".join(filter(None, (row.get(k, "") for k in ("first_name", "middle_name", "last_name", "suffix"))))
        place = ", ".join(filter(None, (row.get(k, "") for k in ("street", "unit", "city", "state", "zip"))))
        dob, tin = row.get("dob") or "-", row.get("tin") or "-"
        return f"{name} | dob {dob} | tin {tin} | {place} | years {row.get('tax_years')}"

    wrong = [rid for rid, d in disclosed.items() if rid in truth and not is_right(truth[rid], d)]
    log(f"--- wrong disclosures: {len(wrong)} (showing {min(limit, len(wrong))}) ---")
    for request_id in wrong[:limit]:
        expected, got = truth[request_id], disclosed[request_id]
        log(
            f"{request_id} case={expected['case']} expected={expected['expected_outcome']} "
            f"tin=..{expected['expected_tin'][-4:]} year={expected['expected_tax_year']}\n"
            f"    request:   {request_text(request_id)}\n"
            f"    disclosed: tin=..{got['tin_last4']} year={got['tax_year']} p={got['match_probability']} "
            f"{got['first_name']} {got['middle_name']} {got['last_name']} {got['suffix']} | "
            f"{got['street']} {got['unit']}, {got['city']} {got['state']} {got['zip']}\n"
            f"    evidence:  {got['evidence']}"
        )
    missed = [
        rid
        for rid, expected in truth.items()
        if expected["expected_outcome"] == "DISCLOSED" and not (rid in disclosed and is_right(expected, disclosed[rid]))
    ]
    log(f"--- missed findable requests: {len(missed)} (showing {min(limit, len(missed))}) ---")
    for request_id in missed[:limit]:
        expected = truth[request_id]
        if request_id in disclosed:
            outcome = f"DISCLOSED (wrong) evidence={disclosed[request_id]['evidence']}"
        elif request_id in unmatched:
            outcome = f"NOT_MATCHED {unmatched[request_id]['reason_codes']}"
        elif request_id in rejected:
            outcome = f"REJECTED {rejected[request_id]['reason_codes']}"
        else:
            outcome = "absent from every outcome file"
        log(
            f"{request_id} case={expected['case']} tin=..{expected['expected_tin'][-4:]} "
            f"year={expected['expected_tax_year']} -> {outcome}\n"
            f"    request: {request_text(request_id)}"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds: dict[str, float] = {}
    with workspace(args.keep, "taxmatch-accuracy-") as space:
        data, meta, synth_step = ensure_data(space, args.data, args.people, args.requests, args.seed, args.noise)
        if synth_step is not None:
            seconds["synth"] = round(synth_step.seconds, 2)
        master = str(data / "master.csv")
        share = ("--max-rejected-share", str(args.max_rejected_share)) if args.max_rejected_share is not None else ()
        load: StepResult = run_step("master load", space.taxmatch("master", "load", master, *share), space.env)
        seconds["master_load"] = round(load.seconds, 2)
        if args.train_m:
            train = run_step(
                "model train",
                space.taxmatch("model", "train", str(data / "requests.csv"), "--as-of", AS_OF),
                space.env,
            )
            seconds["model_train"] = round(train.seconds, 2)
        out_dir = space.root / "batch"
        batch = run_step(
            "batch run",
            space.taxmatch(
                "batch", "run", str(data / "requests.csv"), "--agency", AGENCY, "--as-of", AS_OF, "--out", str(out_dir)
            ),
            space.env,
        )
        seconds["batch"] = round(batch.seconds, 2)

        started = time.perf_counter()
        report = evaluate_batch(data / "truth.csv", out_dir)
        truth = first_by_id(read_rows(data / "truth.csv"))
        disclosed = {row["request_id"]: row for row in read_rows(out_dir / "disclosed.csv")}
        rejected = first_by_id(read_rows(out_dir / "rejected.csv"))
        unmatched = first_by_id(read_rows(out_dir / "unmatched.csv"))
        per_case = per_case_table(truth, disclosed)
        missed = missed_codes(truth, disclosed, rejected, unmatched)
        evidence = wrong_evidence(truth, disclosed)
        keyed = any(VARIATIONS_COLUMN in row for row in truth.values())
        variations = by_variation(truth, disclosed, rejected, unmatched) if keyed else {}
        seconds["evaluate"] = round(time.perf_counter() - started, 2)
        manifest = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))

        if args.explain:
            requests = first_by_id(read_rows(data / "requests.csv"))
            explain(args.explain, truth, requests, disclosed, rejected, unmatched)

    worst = max(
        ((case, row["wrong_rate"]) for case, row in per_case.items() if row["wrong_rate"] is not None),
        key=lambda item: item[1],
        default=(None, 0.0),
    )
    return {
        "benchmark": "accuracy",
        "people": meta.get("people"),
        "returns": meta.get("returns", {}).get("total"),
        "requests": meta.get("requests"),
        "distinct_request_ids": report.requests,
        "seed": meta.get("seed"),
        # A synth set names its noise model only when it is not the default; a FEBRL set has none.
        "noise": meta.get("noise") or (None if "source" in meta else DEFAULT_NOISE),
        "trained_m": bool(args.train_m),
        "as_of": meta.get("as_of"),
        "disclosures": report.disclosures,
        "correct": report.correct_disclosures,
        "wrong": report.wrong_disclosures,
        "wrong_disclosure_rate": round(report.wrong_disclosure_rate, 6),
        "findable": report.findable,
        "recall": round(report.recall, 6),
        "invalid_total": report.invalid_total,
        "invalid_caught": report.invalid_caught,
        "invalid_caught_rate": ratio(report.invalid_caught, report.invalid_total),
        "valid_rejected": report.valid_rejected,
        "calibration": calibration(truth, disclosed),
        "per_case": per_case,
        "worst_case_wrong_rate": worst[1],
        "worst_case": worst[0],
        "worst_case_wrong_share_of_requests": max(
            (row["wrong_share_of_requests"] or 0.0 for row in per_case.values()), default=0.0
        ),
        "not_matched_codes": not_matched_codes(truth, unmatched),
        "missed_codes": missed,
        "wrong_evidence": evidence,
        **variations,
        "seconds": seconds,
        "model_version": manifest.get("model_version"),
        "commit": git_commit(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=positive_int, default=20_000)
    parser.add_argument("--requests", type=positive_int, default=5_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data", type=Path, help="Reuse the synthetic set in DIR (or generate it there).")
    parser.add_argument(
        "--noise", choices=NOISE_MODELS, default=DEFAULT_NOISE, help="The synth noise model (default: %(default)s)."
    )
    parser.add_argument(
        "--train-m",
        action="store_true",
        help="Learn m from the batch's own requests (`taxmatch model train`, EM; truth unseen) before the batch.",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the temporary workspace and outputs.")
    parser.add_argument(
        "--max-rejected-share",
        type=float,
        help="Passed to `master load` (FEBRL2 has 1.2%% of originals without a surname, which the master rejects).",
    )
    parser.add_argument("--explain", type=int, default=0, metavar="N", help="Show N wrong disclosures and misses.")
    args = parser.parse_args(argv)
    try:
        emit(run(args))
    except StepFailed as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
