"""Writers for batch outcomes: disclosed/rejected/unmatched.csv and manifest.json.

Outputs must be byte-identical for the same inputs (DESIGN.md section 1), so the CSV
dialect, number formats and JSON layout are fixed here and nowhere else.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

from taxmatch.records import DISCLOSED_COLUMNS, REASON_COLUMNS, Decision, Disclosure, Outcome, ReasonCode

__all__ = [
    "MANIFEST_FILENAME",
    "OUTCOME_FILENAMES",
    "OutcomeWriter",
    "RenderedOutcomes",
    "StagedOutcomesMissingError",
    "manifest_text",
    "publish_outcomes",
    "render_outcomes",
    "sha256_file",
    "spreadsheet_safe",
    "staging_directory",
    "write_manifest",
]

# Counts keys and file names, in the order the contract lists them.
OUTCOME_FILENAMES: Final[dict[Outcome, str]] = {
    Outcome.DISCLOSED: "disclosed.csv",
    Outcome.REJECTED: "rejected.csv",
    Outcome.NOT_MATCHED: "unmatched.csv",
}
_COUNT_KEYS: Final[dict[Outcome, str]] = {
    Outcome.DISCLOSED: "disclosed",
    Outcome.REJECTED: "rejected",
    Outcome.NOT_MATCHED: "unmatched",
}
MANIFEST_FILENAME: Final = "manifest.json"

_FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """Prefix a single quote to a value a spreadsheet would evaluate as a formula.

    OWASP CSV-injection guidance: a cell starting with ``= + - @`` (or tab / carriage
    return, which some spreadsheets skip before evaluating) is neutralised with a leading
    ``'``. The price is that a negative number would become text; the outcome files hold
    no negative numbers (probabilities, years and ZIPs are non-negative), so nothing is
    lost. Quotes and commas inside the value are the CSV writer's job, not this one's.
    """
    if value.startswith(_FORMULA_TRIGGERS):
        return "'" + value
    return value


# The dialect of every outcome file.
_DIALECT: Final[dict[str, Any]] = {"delimiter": ",", "lineterminator": "\n", "quoting": csv.QUOTE_MINIMAL}
# A cell that `spreadsheet_safe` would change, as it appears in CSV text that starts with a "\n":
# after a delimiter or line end, maybe opening quotes (a cell starting with "\r" is quoted).
# A hit inside a quoted cell is only a false alarm; no cell that starts with a trigger escapes it.
_TRIGGER_IN_CSV: Final = re.compile('[,\n]"?[' + re.escape("".join(_FORMULA_TRIGGERS)) + "]")
# The Disclosure fields of disclosed.csv written as they are: tin_last4 ... zip.
_AS_IS: Final = attrgetter(*DISCLOSED_COLUMNS[1:11])


# Per outcome file: its rows as CSV text (header excluded) and how many rows that is.
RenderedOutcomes = dict[Outcome, tuple[str, int]]


def render_outcomes(decisions: Sequence[Decision], extra_disclosed_columns: Sequence[str] = ()) -> RenderedOutcomes:
    """The rows `OutcomeWriter.write` would write for each decision, in order, as CSV text per file.

    `write` costs ~5 us a row, most of it a `spreadsheet_safe` call per cell. Here the rows of
    each file are written as they are to one CSV text, and that text is searched once for a
    cell starting with a formula trigger (`_TRIGGER_IN_CSV`); only if there is one are the
    rows written again cell by cell through `spreadsheet_safe`. Every decision is checked
    before anything is rendered. Pure: a batch renders in a second process (`taxmatch.parallel`).
    """
    routed: dict[Outcome, list[Decision]] = {outcome: [] for outcome in OUTCOME_FILENAMES}
    try:
        for decision in decisions:
            # An Outcome is a str enum: its value finds the same key.
            routed[decision.outcome].append(decision)
    except KeyError as error:
        raise ValueError(f"{error.args[0]!r} is not a valid Outcome") from None
    disclosed = routed[Outcome.DISCLOSED]
    disclosures: list[Disclosure] = []
    for decision in disclosed:
        if decision.disclosure is None:
            raise ValueError(f"request {decision.request_id!r}: DISCLOSED decision without a disclosure")
        disclosures.append(decision.disclosure)
    extra = attrgetter(*extra_disclosed_columns) if extra_disclosed_columns else None
    # Row by row, each disclosure read once (a column at a time reads every object 14 times: ~2x slower).
    rows: list[tuple[Any, ...]] = [
        (
            decision.request_id,
            *_AS_IS(disclosure),
            str(int(disclosure.tax_year)),
            f"{disclosure.match_probability:.6f}",
            disclosure.evidence,
        )
        for decision, disclosure in zip(disclosed, disclosures, strict=True)
    ]
    if extra is not None:
        more = (lambda value: (value,)) if len(extra_disclosed_columns) == 1 else tuple
        rows = [(*row, *more(extra(disclosure))) for row, disclosure in zip(rows, disclosures, strict=True)]
    rendered: RenderedOutcomes = {Outcome.DISCLOSED: (_csv_text(rows), len(rows))}
    for outcome in (Outcome.REJECTED, Outcome.NOT_MATCHED):
        reasons: dict[tuple[tuple[ReasonCode, ...], str], tuple[str, str]] = {}
        for decision in routed[outcome]:
            key = (decision.reason_codes, decision.detail)
            if key not in reasons:
                reasons[key] = (";".join(code.value for code in decision.reason_codes), decision.reasons_text)
        rows = [(d.request_id, *reasons[(d.reason_codes, d.detail)]) for d in routed[outcome]]
        rendered[outcome] = (_csv_text(rows), len(rows))
    return rendered


def _csv_text(rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    csv.writer(buffer, **_DIALECT).writerows(rows)
    text = buffer.getvalue()
    if _TRIGGER_IN_CSV.search("\n" + text):
        buffer = io.StringIO()
        csv.writer(buffer, **_DIALECT).writerows([spreadsheet_safe(value or "") for value in row] for row in rows)
        text = buffer.getvalue()
    return text


class OutcomeWriter:
    """Writes every decision of a batch to one of the three outcome CSVs.

    Rows go to temporary files in `out_dir` that replace the final files only when the
    writer closes without an exception, so a crashed run never leaves a truncated
    outcome file that looks complete. Use as a context manager.
    """

    def __init__(self, out_dir: Path, extra_disclosed_columns: Sequence[str] = ()) -> None:
        """`extra_disclosed_columns` (`tin`, `phone`) follow the contract's columns in disclosed.csv,
        only when the policy releases them (`Policy.extra_disclosed_columns`)."""
        unknown = set(extra_disclosed_columns) - {"tin", "phone"}
        if unknown:
            raise ValueError(f"not a releasable disclosure field: {', '.join(sorted(unknown))}")
        self.extra_disclosed_columns = tuple(extra_disclosed_columns)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._counts: dict[str, int] = dict.fromkeys(_COUNT_KEYS.values(), 0)
        self._files: dict[Outcome, tuple[IO[str], Path]] = {}
        self._writers: dict[Outcome, Any] = {}
        self._closed = False
        try:
            for outcome, name in OUTCOME_FILENAMES.items():
                handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed into place on close
                    mode="w",
                    encoding="utf-8",
                    newline="",
                    dir=self.out_dir,
                    prefix=f".{name}.",
                    suffix=".tmp",
                    delete=False,
                )
                self._files[outcome] = (handle, Path(handle.name))
                writer = csv.writer(handle, **_DIALECT)
                header = (
                    (*DISCLOSED_COLUMNS, *self.extra_disclosed_columns)
                    if outcome is Outcome.DISCLOSED
                    else REASON_COLUMNS
                )
                writer.writerow(header)
                self._writers[outcome] = writer
        except BaseException:
            self._discard()
            raise

    def __enter__(self) -> OutcomeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    @property
    def counts(self) -> dict[str, int]:
        """Rows written so far per outcome: keys disclosed, rejected, unmatched."""
        return dict(self._counts)

    def paths(self) -> dict[str, Path]:
        """Final paths of the outcome files, keyed like `counts`."""
        return {_COUNT_KEYS[outcome]: self.out_dir / name for outcome, name in OUTCOME_FILENAMES.items()}

    def write(self, decision: Decision) -> None:
        if self._closed:
            raise ValueError("OutcomeWriter is closed")
        outcome = Outcome(decision.outcome)
        if outcome is Outcome.DISCLOSED:
            disclosure = decision.disclosure
            if disclosure is None:
                raise ValueError(f"request {decision.request_id!r}: DISCLOSED decision without a disclosure")
            row = [
                decision.request_id,
                disclosure.tin_last4,
                disclosure.first_name,
                disclosure.middle_name,
                disclosure.last_name,
                disclosure.suffix,
                disclosure.street,
                disclosure.unit,
                disclosure.city,
                disclosure.state,
                disclosure.zip,
                str(int(disclosure.tax_year)),
                f"{disclosure.match_probability:.6f}",
                disclosure.evidence,
                *(getattr(disclosure, column) for column in self.extra_disclosed_columns),
            ]
        else:
            row = [
                decision.request_id,
                ";".join(code.value for code in decision.reason_codes),
                decision.reasons_text,
            ]
        self._writers[outcome].writerow([spreadsheet_safe(value or "") for value in row])
        self._counts[_COUNT_KEYS[outcome]] += 1

    def write_many(self, decisions: Sequence[Decision]) -> None:
        """`write` each decision, in order: the same bytes, for a whole batch at once."""
        self.write_rendered(render_outcomes(decisions, self.extra_disclosed_columns))

    def write_rendered(self, rendered: RenderedOutcomes) -> None:
        """Write what `render_outcomes` made of a batch's decisions (perhaps in another process)."""
        if self._closed:
            raise ValueError("OutcomeWriter is closed")
        for outcome, (text, rows) in rendered.items():
            self._files[outcome][0].write(text)
            self._counts[_COUNT_KEYS[outcome]] += rows

    def close(self) -> None:
        """Flush, fsync and atomically rename the three files into place."""
        if self._closed:
            return
        self._closed = True
        try:
            for handle, _ in self._files.values():
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
            for outcome, (_, temporary) in self._files.items():
                os.replace(temporary, self.out_dir / OUTCOME_FILENAMES[outcome])
        except BaseException:
            self._discard()
            raise
        _fsync_directory(self.out_dir)

    def _discard(self) -> None:
        self._closed = True
        for handle, temporary in self._files.values():
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (inputs can be gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def manifest_text(manifest: dict[str, Any]) -> str:
    """manifest.json's text: sorted keys, indent 2, trailing newline.

    Values must already be JSON types; a Path or date is refused rather than stringified
    in some ad-hoc way that could differ between callers.
    """
    return json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write manifest.json byte-stably (`manifest_text`), atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / MANIFEST_FILENAME
    _atomic_write_bytes(target, manifest_text(manifest).encode("utf-8"))
    return target


class StagedOutcomesMissingError(RuntimeError):
    """An outcome file to put in place is neither staged nor already in place with its recorded hash."""


def staging_directory(target: Path, batch_id: str) -> Path:
    """Where a batch's files are written before its ledger commit: beside `target` (so the rename
    that puts them in place stays on one file system), hidden, named by the batch."""
    target = Path(target)
    return target.parent / f".{target.name}.{batch_id}.staging"


def publish_outcomes(staging: Path, target: Path, manifest: dict[str, Any]) -> None:
    """Put a batch's staged outcome files and manifest in place at `target`.

    Called only after the ledger commit that accounts for them. When `target` does not exist
    yet (or is empty), the staging directory is renamed onto it: every file appears at once.
    Into a directory that holds other files (an `--out` used before), file by file: its old
    manifest is removed first and the new one renamed in last, so a manifest always describes
    the files beside it. Idempotent: a file already in place with the hash `manifest` records
    is left as it is, so a run killed half way through can be finished by calling this again.
    Raises `StagedOutcomesMissingError` when a file is in neither place (the caller renders it
    again into `staging` and retries).
    """
    staging, target = Path(staging), Path(target)
    outputs: dict[str, str] = manifest["outputs"]
    expected_manifest = manifest_text(manifest).encode("utf-8")
    names = [*sorted(outputs), MANIFEST_FILENAME]
    if all((staging / name).is_file() for name in names) and _is_empty_or_missing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        # rename(2) replaces an empty directory in one step.
        os.replace(staging, target)
        _fsync_directory(target.parent)
        return

    def in_place(name: str) -> bool:
        path = target / name
        if not path.is_file():
            return False
        if name == MANIFEST_FILENAME:
            return path.read_bytes() == expected_manifest
        return sha256_file(path) == outputs[name]

    missing = [name for name in names if not (staging / name).is_file() and not in_place(name)]
    if missing:
        raise StagedOutcomesMissingError(f"not staged in {staging} nor in place in {target}: {', '.join(missing)}")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)  # owner only: personal data
    if (staging / MANIFEST_FILENAME).is_file():
        (target / MANIFEST_FILENAME).unlink(missing_ok=True)
    for name in names:
        if (staging / name).is_file():
            os.replace(staging / name, target / name)
    _fsync_directory(target)
    shutil.rmtree(staging, ignore_errors=True)


def _is_empty_or_missing(directory: Path) -> bool:
    if not directory.exists():
        return True
    return directory.is_dir() and not any(directory.iterdir())


def _atomic_write_bytes(target: Path, data: bytes) -> None:
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the renames durable; not every platform lets a directory be opened.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
