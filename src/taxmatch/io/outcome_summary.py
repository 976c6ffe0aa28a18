"""What a batch's outcome files say in aggregate, for its page's charts (`/ui/batches/{id}`).

The ledger has each request's outcome and reason codes, but not its probability, nor the state
and tax year of what was disclosed: those are in the outcome files (disclosed.*: state,
tax_year, match_probability; unmatched.*: the best match probability at the end of `reasons`,
`taxmatch.explain.best_probability_words`). They are read here by column with Arrow, in the
format the batch wrote (CSV, NDJSON or Parquet), and never row by row in Python.

A batch's files do not change once in place, so a summary is kept per (file, size, mtime):
a page read again costs nothing; the first read of a 100k-request batch is measured in
benchmarks/ui.py (`batch_page_first_ms`).
"""

from __future__ import annotations

import csv
import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

__all__ = ["PROBABILITY_BINS", "OutcomeSummary", "outcome_row", "summarize_outcomes"]

PROBABILITY_BINS: Final = 20  # of width 0.05; a probability of exactly 1 is in the last
_BEST_PROBABILITY: Final = r"best match probability (?P<p>[0-9.]+)$"
_lock = threading.Lock()


@dataclass(frozen=True)
class OutcomeSummary:
    # Per bin (its lower edge, "0.00" to "0.95"): disclosed requests by their match probability,
    # unmatched ones by their best candidate's (those without any candidate are not in a bin).
    probability_bins: tuple[tuple[str, dict[str, int]], ...]
    disclosed_by_state: dict[str, int]  # largest first
    disclosed_by_tax_year: dict[str, int]  # by year
    unmatched_without_candidate: int


def _read(path: Path, columns: list[str]) -> pa.Table | None:
    """The `columns` of one outcome file as text columns (Parquet and NDJSON type two of them)."""
    if not path.is_file():
        return None
    suffix = path.suffix
    if suffix == ".parquet":
        table = pq.read_table(path, columns=columns)
    elif suffix == ".ndjson":
        if path.stat().st_size == 0:
            return pa.table({name: pa.array([], pa.string()) for name in columns})
        table = pa_json.read_json(path).select(columns)
    else:
        table = pa_csv.read_csv(
            path,
            convert_options=pa_csv.ConvertOptions(
                include_columns=columns, column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False
            ),
        )
    return pa.table({name: pc.cast(table[name], pa.string()) for name in columns})


def _bins(probabilities: pa.ChunkedArray | pa.Array) -> dict[int, int]:
    valid = pc.drop_null(pc.cast(probabilities, pa.float64()))
    if len(valid) == 0:
        return {}
    bin_of = pc.cast(pc.floor(pc.multiply(valid, PROBABILITY_BINS)), pa.int64())
    index = pc.min_element_wise(bin_of, PROBABILITY_BINS - 1)
    counted = pc.value_counts(index)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))


def _counts(values: pa.ChunkedArray) -> dict[str, int]:
    counted = pc.value_counts(values)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True))


@functools.lru_cache(maxsize=64)
def _summary(disclosed: Path, unmatched: Path, _stamp: tuple[tuple[int, int], ...]) -> OutcomeSummary:
    disclosures = _read(disclosed, ["state", "tax_year", "match_probability"])
    misses = _read(unmatched, ["reasons"])
    disclosed_bins: dict[int, int] = {}
    unmatched_bins: dict[int, int] = {}
    by_state: dict[str, int] = {}
    by_year: dict[str, int] = {}
    without = 0
    if disclosures is not None and disclosures.num_rows:
        probability_text = disclosures["match_probability"]
        probabilities = pc.if_else(pc.equal(probability_text, ""), None, probability_text)
        disclosed_bins = _bins(probabilities)
        by_state = dict(sorted(_counts(disclosures["state"]).items(), key=lambda item: (-item[1], item[0])))
        by_year = dict(sorted(_counts(disclosures["tax_year"]).items()))
    if misses is not None and misses.num_rows:
        best = pc.struct_field(pc.extract_regex(misses["reasons"], _BEST_PROBABILITY), "p")
        unmatched_bins = _bins(best)
        without = misses.num_rows - sum(unmatched_bins.values())
    bins = tuple(
        (
            f"{position / PROBABILITY_BINS:.2f}",
            {"DISCLOSED": disclosed_bins.get(position, 0), "NOT_MATCHED": unmatched_bins.get(position, 0)},
        )
        for position in range(PROBABILITY_BINS)
    )
    return OutcomeSummary(bins, by_state, by_year, without)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        status = path.stat()
    except OSError:
        return (-1, -1)
    return status.st_size, status.st_mtime_ns


def summarize_outcomes(directory: Path, disclosed_name: str, unmatched_name: str) -> OutcomeSummary:
    """The summary of the batch whose outcome files are in `directory` (missing files count as empty)."""
    disclosed, unmatched = directory / disclosed_name, directory / unmatched_name
    with _lock:
        return _summary(disclosed, unmatched, (_stamp(disclosed), _stamp(unmatched)))


@functools.lru_cache(maxsize=8)
def _outcome_table(path: Path, _stamp: tuple[int, int]) -> pa.Table | None:
    if _stamp[0] <= 0:
        return None
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".ndjson":
        return pa_json.read_json(path)
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    # Every column as the text the file holds (a ZIP of 02134 is not the number 2134).
    as_text = pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False)
    return pa_csv.read_csv(path, convert_options=as_text)


def outcome_row(directory: Path, file_name: str, request_id: str) -> dict[str, str] | None:
    """The row of `request_id` in one of the batch's outcome files (any format), as text; None if absent.

    The file is read once and kept (a few at a time) while it is unchanged: a batch's request pages
    are read one after another."""
    path = directory / file_name
    with _lock:
        table = _outcome_table(path, _stamp(path))
    if table is None:
        return None
    # The CSV guards a value starting with = + - @ with a quote: both forms are the request's id.
    found = table.filter(pc.is_in(table["request_id"], pa.array([request_id, "'" + request_id], pa.string())))
    if not found.num_rows:
        return None
    return {name: "" if value is None else str(value) for name, value in found.slice(0, 1).to_pylist()[0].items()}
