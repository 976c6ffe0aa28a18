"""Outcome files in NDJSON or Parquet (`batch run --format`); CSV (`OutcomeWriter`) stays the default and the contract.

The same three files (disclosed, rejected, unmatched), the same columns in the same order and the
same values as the CSV files, with two differences a machine reader wants:

* ``tax_year`` is an integer and ``match_probability`` a number (rounded to 6 decimals, as the CSV
  prints it); every other value is text, ``""`` where the CSV cell is empty;
* no cell is prefixed with ``'``: the CSV's guard against spreadsheet formulas (`spreadsheet_safe`)
  would change the data, and neither format is opened by a spreadsheet as a formula sheet.

Written atomically like the CSV files: to temporary files renamed into place on a clean close.
Byte-identical for the same decisions (sorted JSON keys; Parquet without statistics timestamps).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from taxmatch.io.outcomes import OUTCOME_FILENAMES, OutcomeWriter, render_outcomes
from taxmatch.records import DISCLOSED_COLUMNS, REASON_COLUMNS, Decision, Outcome

__all__ = ["OUTPUT_FORMATS", "OutcomeFiles", "OutputFormat", "TableOutcomeWriter", "outcome_rows", "outcome_writer"]

OutputFormat = Literal["csv", "ndjson", "parquet"]
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = ("csv", "ndjson", "parquet")
_COUNT_KEYS: Final[dict[Outcome, str]] = {
    Outcome.DISCLOSED: "disclosed",
    Outcome.REJECTED: "rejected",
    Outcome.NOT_MATCHED: "unmatched",
}
# Rows per outcome file, as plain tuples: what a forked process can send back cheaply.
OutcomeRows = dict[Outcome, list[tuple[Any, ...]]]


class OutcomeFiles(Protocol):
    """What `run_batch` needs of an outcome writer, whatever the format."""

    @property
    def counts(self) -> dict[str, int]: ...

    def paths(self) -> dict[str, Path]: ...

    def render(self, decisions: Sequence[Decision]) -> Any: ...

    def write_rendered(self, rendered: Any) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...


def file_name(outcome: Outcome, output_format: OutputFormat) -> str:
    """disclosed.csv -> disclosed.ndjson / disclosed.parquet."""
    return OUTCOME_FILENAMES[outcome].removesuffix(".csv") + "." + output_format


def outcome_rows(decisions: Sequence[Decision], extra_disclosed_columns: Sequence[str] = ()) -> OutcomeRows:
    """Each outcome file's rows, typed, in decision order (the CSV's rows before formatting)."""
    rows: OutcomeRows = {outcome: [] for outcome in OUTCOME_FILENAMES}
    for decision in decisions:
        outcome = Outcome(decision.outcome)
        if outcome is Outcome.DISCLOSED:
            d = decision.disclosure
            if d is None:
                raise ValueError(f"request {decision.request_id!r}: DISCLOSED decision without a disclosure")
            rows[outcome].append(
                (
                    decision.request_id, d.tin_last4, d.first_name, d.middle_name, d.last_name, d.suffix, d.street,
                    d.unit, d.city, d.state, d.zip, int(d.tax_year), round(d.match_probability, 6), d.evidence,
                    *(getattr(d, column) for column in extra_disclosed_columns),
                )
            )  # fmt: skip
        else:
            rows[outcome].append(
                (decision.request_id, ";".join(code.value for code in decision.reason_codes), decision.reasons_text)
            )
    return rows


def _columns(outcome: Outcome, extra_disclosed_columns: Sequence[str]) -> tuple[str, ...]:
    return (*DISCLOSED_COLUMNS, *extra_disclosed_columns) if outcome is Outcome.DISCLOSED else REASON_COLUMNS


def _arrow_type(column: str) -> pa.DataType:
    return pa.int64() if column == "tax_year" else pa.float64() if column == "match_probability" else pa.string()


def _ndjson_bytes(columns: Sequence[str], rows: list[tuple[Any, ...]]) -> bytes:
    lines = (
        json.dumps(
            {name: ("" if value is None else value) for name, value in zip(columns, row, strict=True)},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for row in rows
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _parquet_table(columns: Sequence[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    arrays = {
        name: pa.array([("" if row[i] is None else row[i]) for row in rows], type=_arrow_type(name))
        for i, name in enumerate(columns)
    }
    return pa.table(arrays)


class TableOutcomeWriter:
    """disclosed/rejected/unmatched as .ndjson or .parquet; the interface of `OutcomeWriter` that `run_batch` uses."""

    def __init__(
        self, out_dir: Path, extra_disclosed_columns: Sequence[str] = (), output_format: OutputFormat = "ndjson"
    ) -> None:
        if output_format not in ("ndjson", "parquet"):
            raise ValueError(f"not a table output format: {output_format!r}")
        unknown = set(extra_disclosed_columns) - {"tin", "phone"}
        if unknown:
            raise ValueError(f"not a releasable disclosure field: {', '.join(sorted(unknown))}")
        self.output_format: OutputFormat = output_format
        self.extra_disclosed_columns = tuple(extra_disclosed_columns)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._rows: OutcomeRows = {outcome: [] for outcome in OUTCOME_FILENAMES}
        self._closed = False

    def __enter__(self) -> TableOutcomeWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True

    @property
    def counts(self) -> dict[str, int]:
        return {_COUNT_KEYS[outcome]: len(rows) for outcome, rows in self._rows.items()}

    def paths(self) -> dict[str, Path]:
        return {_COUNT_KEYS[outcome]: self.out_dir / file_name(outcome, self.output_format) for outcome in self._rows}

    def render(self, decisions: Sequence[Decision]) -> OutcomeRows:
        """Pure Python: may run in a forked process (the files themselves are made in `close`)."""
        return outcome_rows(decisions, self.extra_disclosed_columns)

    def write_rendered(self, rendered: OutcomeRows) -> None:
        if self._closed:
            raise ValueError("TableOutcomeWriter is closed")
        for outcome, rows in rendered.items():
            self._rows[outcome].extend(rows)

    def write_many(self, decisions: Sequence[Decision]) -> None:
        self.write_rendered(self.render(decisions))

    def close(self) -> None:
        """Write each file to a temporary name, then rename all three into place."""
        if self._closed:
            return
        self._closed = True
        temporaries: list[tuple[Path, Path]] = []
        try:
            for outcome, rows in self._rows.items():
                columns = _columns(outcome, self.extra_disclosed_columns)
                target = self.out_dir / file_name(outcome, self.output_format)
                descriptor, name = tempfile.mkstemp(dir=self.out_dir, prefix=f".{target.name}.", suffix=".tmp")
                temporaries.append((Path(name), target))
                with os.fdopen(descriptor, "wb") as handle:
                    if self.output_format == "ndjson":
                        handle.write(_ndjson_bytes(columns, rows))
                    else:
                        pq.write_table(_parquet_table(columns, rows), handle, compression="zstd")
                    handle.flush()
                    os.fsync(handle.fileno())
            for temporary, target in temporaries:
                os.replace(temporary, target)
        except BaseException:
            for temporary, _ in temporaries:
                with contextlib.suppress(OSError):
                    temporary.unlink(missing_ok=True)
            raise


class _CsvOutcomeWriter(OutcomeWriter):
    """`OutcomeWriter` with `render`: the CSV text of `render_outcomes` (pure, may run in a fork)."""

    def render(self, decisions: Sequence[Decision]) -> Any:
        return render_outcomes(decisions, self.extra_disclosed_columns)


def outcome_writer(
    out_dir: Path, extra_disclosed_columns: Sequence[str] = (), output_format: OutputFormat = "csv"
) -> OutcomeFiles:
    """The writer of a batch's outcome files in `output_format` (csv: the contract's files, byte for byte)."""
    if output_format == "csv":
        return _CsvOutcomeWriter(out_dir, extra_disclosed_columns)
    return TableOutcomeWriter(out_dir, extra_disclosed_columns, output_format)
