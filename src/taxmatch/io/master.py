"""Streaming reader for master files of returns (CSV or Parquet, DESIGN.md section 3).

Rows come out in Arrow batches of raw strings ready to be inserted into DuckDB; a row
that cannot be used is reported as `MasterRowProblem` with its line (CSV) or row
(Parquet) number and never stops the load. Problems name the field, never its value:
master rows are taxpayer data and must not reach a log.

The CSV rule (docs/master.md): one physical line is one return. No master field holds a
line break, so a quote that is still open at the end of its line makes that line a
malformed row; it never joins the next lines into one "return". Every physical line
after the header is either read or reported, and the reader checks that it did so.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from taxmatch.io.csv_lines import LineSplitter, field_name, is_binary_text, quote_problem, split_line

MASTER_COLUMNS: tuple[str, ...] = (
    "tin",
    "tax_year",
    "role",
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "dob",
    "street",
    "unit",
    "city",
    "state",
    "zip",
    "phone",
)
REQUIRED_MASTER_COLUMNS: tuple[str, ...] = ("tin", "tax_year", "role", "first_name", "last_name", "street")
# No name, address part, TIN or phone on a return comes near this; a longer value is debris
# (a merged line, a pasted note), not a field.
MAX_FIELD_CHARS = 200
# A line longer than this is reported without being parsed: fourteen fields at the limit fit
# many times over, and the csv module (field limit 131,072) is never handed a longer one.
MAX_LINE_BYTES = 65_536
BATCH_ROWS = 100_000
# A load that would drop more than this share of the rows it read fails and keeps the old
# master: so many bad rows mean a wrong or damaged file (integer TINs that lost their leading
# zeros, a stray quote, the wrong export), not a few bad returns. A handful of rejects is
# tolerated in any file, so that a small file is not refused for one bad row.
MAX_REJECTED_SHARE = 0.01
REJECTS_ALWAYS_TOLERATED = 10

# Parquet column types: a TIN, ZIP or phone stored as a number has lost its leading zeros
# (02134 -> 2134) before we ever see it, so such a file is refused, not repaired by guessing.
_NUMBER_ALLOWED = frozenset({"tax_year"})
_DATE_ALLOWED = frozenset({"dob"})


class MasterFileError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, wrong header), or the load would lose it."""


@dataclass(frozen=True)
class MasterRowProblem:
    file: str
    line: int
    problem: str


def _per_column(condition: str, message: str) -> str:
    """A CASE naming the first master column for which `condition` ({c} = the column) holds."""
    branches = " ".join(
        f"WHEN {condition.format(c=column)} THEN '{message.format(c=column)}'" for column in MASTER_COLUMNS
    )
    return f"CASE {branches} END"


def _any_column(condition: str) -> str:
    return " OR ".join(f"({condition.format(c=column)})" for column in MASTER_COLUMNS)


# No master value holds a quote or a line break: what a stray quote leaves behind (docs/files.md).
_QUOTE_OR_BREAK = r'["\n\r]'
_QUOTE_OR_BREAK_PROBLEM = "{} holds a quote or a line break"
_TOO_LONG = _per_column(f"length({{c}}) > {MAX_FIELD_CHARS}", f"{{c}} is longer than {MAX_FIELD_CHARS} characters")
# What makes a read row unusable, as SQL over the staged rows (all VARCHAR, already trimmed).
# Checked in the database, vectorized, because a Python test per row of millions costs a minute.
# A quote or a line break in a value is refused by the readers instead (`_QUOTE_OR_BREAK`): only
# a CSV line that holds a quote, or a Parquet value, can carry one, and testing every row here
# cost a third more SQL time (1 s at 1M rows).
_ALL_VALUES = f"concat({', '.join(MASTER_COLUMNS)})"
ROW_PROBLEM_SQL = f"""CASE
    WHEN greatest({", ".join(f"length({column})" for column in MASTER_COLUMNS)}) > {MAX_FIELD_CHARS}
        THEN {_TOO_LONG}
    WHEN contains({_ALL_VALUES}, chr(65533)) OR contains({_ALL_VALUES}, chr(0))
        THEN 'invalid UTF-8 or NUL byte'
    WHEN NOT regexp_full_match(tin, '[0-9]{{3}}-?[0-9]{{2}}-?[0-9]{{4}}') THEN 'tin is not 9 digits'
    WHEN NOT regexp_full_match(tax_year, '(19|20)[0-9][0-9]') THEN 'tax_year is not a year YYYY'
    WHEN lower(role) NOT IN ('primary', 'spouse') THEN 'role is not primary or spouse'
    WHEN last_name = '' THEN 'last_name is empty'
    WHEN street = '' THEN 'street is empty'
    WHEN zip <> '' AND NOT regexp_full_match(zip, '[0-9]{{5}}(-?[0-9]{{4}})?') THEN 'zip is not 5 or 9 digits'
    WHEN dob <> '' AND NOT regexp_full_match(dob, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN 'dob is not YYYY-MM-DD'
END"""


def refuse_lossy_load(rows: int, rejected: int, max_rejected_share: float = MAX_REJECTED_SHARE) -> None:
    """Raise `MasterFileError` if a load of `rows` rows (read or rejected) must not replace the master.

    Called before the swap, so a refused load keeps the previous master and its model.
    `max_rejected_share` is `master load --max-rejected-share`: an operator who has read the
    rejects may accept a lossier file knowingly; the default refuses it.
    """
    kept = " The master was not replaced."
    if rows == 0:
        raise MasterFileError("the file(s) hold no rows after the header." + kept)
    if rejected >= rows:
        raise MasterFileError(f"all {rows:,} rows were rejected (see master-rejects.csv)." + kept)
    if rejected > REJECTS_ALWAYS_TOLERATED and rejected > max_rejected_share * rows:
        raise MasterFileError(
            f"{rejected:,} of {rows:,} rows ({rejected / rows:.1%}) were rejected, more than the "
            f"{max_rejected_share:.1%} a load may drop; the rows and their problems are in master-rejects.csv "
            "(to load it anyway, knowingly: --max-rejected-share)." + kept
        )


def _table(source_name: str, columns: list[list[str]], lines: list[int]) -> pa.Table:
    arrays = {
        column: pa.array(values, type=pa.string()) for column, values in zip(MASTER_COLUMNS, columns, strict=True)
    }
    arrays["source_file"] = pa.array([source_name] * len(lines), type=pa.string())
    arrays["source_line"] = pa.array(lines, type=pa.int64())
    return pa.table(arrays)


def _check_header(path: Path, found: list[str]) -> None:
    missing = [column for column in REQUIRED_MASTER_COLUMNS if column not in found]
    if missing:
        raise MasterFileError(
            f"{path}: header lacks required column(s) {', '.join(missing)}; found: {', '.join(found) or '(none)'}"
        )
    repeated = sorted({column for column in found if column in MASTER_COLUMNS and found.count(column) > 1})
    if repeated:
        raise MasterFileError(f"{path}: header repeats column(s) {', '.join(repeated)}")


def _check_accounting(path: Path, lines: int, read: int, rejected: int) -> None:
    """Every physical line after the header is a row read or a row rejected, or the file is refused."""
    if read + rejected != lines:
        raise MasterFileError(
            f"{path}: {lines:,} lines after the header but {read:,} rows read and {rejected:,} rejected; "
            "the file was not loaded"
        )


_PLAIN_SCAN_BYTES = 16 << 20
_LONG_LINE_WINDOW = MAX_LINE_BYTES // 2
assert _PLAIN_SCAN_BYTES % _LONG_LINE_WINDOW == 0


def _plain_lines(path: Path) -> int | None:
    """The number of physical lines if every one of them is a plain record of valid UTF-8 text, else None.

    Then Arrow's C++ reader (6x faster than the csv module at 3M rows, this scan included) reads
    the file with the same records, and a record's line number is its position; otherwise
    `_read_lines` reads it line by line. What rules a file out: a quote (Arrow would have to be
    trusted with it), a carriage return or a blank line (Arrow skips them, which shifts line
    numbers), invalid UTF-8 or a NUL byte (which must cost one row, not the file) and a line that
    may be longer than MAX_LINE_BYTES (any of 2 * _LONG_LINE_WINDOW bytes or more is found).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    newlines = 0
    last = b"\n"  # a blank first line is a blank line
    with path.open("rb") as binary:
        while chunk := binary.read(_PLAIN_SCAN_BYTES):
            if b'"' in chunk or b"\r" in chunk or b"\x00" in chunk or b"\n\n" in chunk:
                return None
            if last == b"\n" and chunk[:1] == b"\n":
                return None
            # A line of 2 * _LONG_LINE_WINDOW bytes or more fills one window of the file without a
            # newline (chunks are whole windows, so windows are aligned to the file). Looking at
            # the windows costs a few hundred memchr calls a chunk; splitting it into lines, a
            # second per million rows.
            for start in range(0, len(chunk), _LONG_LINE_WINDOW):
                end = start + _LONG_LINE_WINDOW
                if end <= len(chunk) and chunk.find(b"\n", start, end) < 0:
                    return None
            newlines += chunk.count(b"\n")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return None
            last = chunk[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return newlines + (0 if last == b"\n" else 1)


def _read_plain_csv(
    path: Path, physical_lines: int, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    """`_read_csv` for a file of plain lines (`_plain_lines`), by Arrow's streaming CSV reader."""
    with path.open("rb") as binary:
        header_line = binary.readline().decode("utf-8-sig")
        if not header_line:
            raise MasterFileError(f"{path}: the file is empty (no header row)")
        header = [column.strip().lower() for column in next(csv.reader([header_line]), [])]
        _check_header(path, header)
        width = len(header)
        positions = [header.index(column) if column in header else None for column in MASTER_COLUMNS]
        skipped: set[int] = set()

        def ragged(row: pa_csv.InvalidRow) -> str:
            # Arrow numbers the lines of what it reads, which starts after the header line.
            line = int(row.number) + 1
            # A plain-lines file has no blank line, so every invalid row has fields: report it.
            on_problem(MasterRowProblem(path.name, line, f"{row.actual_columns} fields where the header has {width}"))
            skipped.add(line)
            return "skip"

        reader = pa_csv.open_csv(
            binary,
            read_options=pa_csv.ReadOptions(
                use_threads=False, block_size=_PLAIN_SCAN_BYTES, column_names=[f"c{i}" for i in range(width)]
            ),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=ragged),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(width)}, strings_can_be_null=False
            ),
        )
        next_line = 2
        last_position = 0
        read = 0
        for batch in reader:
            lines: list[int] = []
            while len(lines) < batch.num_rows:
                if next_line not in skipped:
                    lines.append(next_line)
                next_line += 1
            empty = pa.array([""] * batch.num_rows, type=pa.string())
            arrays = {
                column: batch.column(position) if position is not None else empty
                for column, position in zip(MASTER_COLUMNS, positions, strict=True)
            }
            arrays["source_file"] = pa.array([path.name] * batch.num_rows, type=pa.string())
            arrays["source_line"] = pa.array(lines, type=pa.int64())
            read += batch.num_rows
            yield pa.table(arrays)
            position = binary.tell()
            on_bytes(position - last_position)
            last_position = position
        on_bytes(path.stat().st_size - last_position)
        _check_accounting(path, physical_lines - 1, read, len(skipped))


_LINE_BLOCK_BYTES = 1 << 20


def _line_texts(binary: IO[bytes]) -> Iterator[str | None]:
    """The physical lines (split on LF, without LF or CRLF), decoded; None for one over MAX_LINE_BYTES.

    Read a block at a time and split in C: a readline and a decode call per line cost the
    line reader a fifth of its time. Invalid UTF-8 becomes U+FFFD (LF is never inside a
    multibyte character, so a bad byte stays on its line), which SQL rejects naming the row.
    """
    pending = b""  # the start of a line whose end is in a later block
    too_long = False  # the pending line is past the limit already; its bytes are dropped
    while block := binary.read(_LINE_BLOCK_BYTES):
        pieces = block.split(b"\n")
        for piece in pieces[:-1]:
            if too_long or len(pending) + len(piece) > MAX_LINE_BYTES:
                yield None
            else:
                text = (pending + piece if pending else piece).decode("utf-8", "replace")
                yield text[:-1] if text.endswith("\r") else text
            pending, too_long = b"", False
        if too_long or len(pending) + len(pieces[-1]) > MAX_LINE_BYTES:
            pending, too_long = b"", True
        else:
            pending += pieces[-1]
    if too_long:
        yield None
    elif pending:
        text = pending.decode("utf-8", "replace")
        yield text[:-1] if text.endswith("\r") else text


def _read_lines(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    """Any CSV master, one physical line at a time; structure here, values in SQL after staging."""
    with path.open("rb") as binary:
        lines_of_file = _line_texts(binary)
        header_text = next(lines_of_file, "")
        if header_text is None:
            raise MasterFileError(f"{path}: the header line is longer than {MAX_LINE_BYTES:,} bytes")
        header_text = header_text.removeprefix("\ufeff")
        if not header_text.strip():
            raise MasterFileError(f"{path}: the file is empty (no header row)")
        header_fields = split_line(header_text)
        if header_fields is None or "\r" in header_text or "\ufffd" in header_text or is_binary_text(header_text):
            raise MasterFileError(f"{path}: the header line is not CSV text (invalid UTF-8, control bytes or quotes)")
        header = [column.strip().lower() for column in header_fields]
        _check_header(path, header)
        width = len(header)
        positions = [header.index(column) if column in header else None for column in MASTER_COLUMNS]
        rows: list[list[str]] = []
        numbers: list[int] = []
        last_position = 0
        seen = read = rejected = 0
        number = 1
        split = LineSplitter().split
        master_positions = [
            (column, at) for column, at in zip(MASTER_COLUMNS, positions, strict=True) if at is not None
        ]

        def reject(problem: str) -> None:
            nonlocal rejected
            rejected += 1
            on_problem(MasterRowProblem(path.name, number, problem))

        for text in lines_of_file:
            number += 1
            seen += 1
            if text is None:
                reject(f"line is longer than {MAX_LINE_BYTES:,} bytes")
                continue
            if not text or text.isspace():
                reject("blank line")
                continue
            if "\r" in text:
                reject("carriage return inside the line")
                continue
            fields = split(text)
            if fields is None:
                broken = quote_problem(text)
                reject(f"{field_name(header, broken.field_index)}: {broken.problem}" if broken else "not valid CSV")
                continue
            if len(fields) != width:
                reject(f"{len(fields)} fields where the header has {width}")
                continue
            # Only a line with a quote can leave one in a value (no CR or LF is left in a line).
            if '"' in text and '"' in "".join(fields):
                quoted = next((column for column, at in master_positions if '"' in fields[at]), None)
                if quoted is not None:
                    reject(_QUOTE_OR_BREAK_PROBLEM.format(quoted))
                    continue
            rows.append(fields)
            numbers.append(number)
            if len(rows) >= BATCH_ROWS:
                read += len(rows)
                yield _table(path.name, _select_columns(rows, positions), numbers)
                rows, numbers = [], []
                position = binary.tell()
                on_bytes(position - last_position)
                last_position = position
        if rows:
            read += len(rows)
            yield _table(path.name, _select_columns(rows, positions), numbers)
        on_bytes(path.stat().st_size - last_position)
        _check_accounting(path, seen, read, rejected)


def _read_csv(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    physical_lines = _plain_lines(path)
    # Arrow refuses a file of a header alone; the line reader reads it as no rows.
    if physical_lines is not None and physical_lines > 1:
        yield from _read_plain_csv(path, physical_lines, on_problem, on_bytes)
    else:
        yield from _read_lines(path, on_problem, on_bytes)


def _select_columns(rows: list[list[str]], positions: list[int | None]) -> list[list[str]]:
    by_position = list(zip(*rows, strict=True))
    empty = [""] * len(rows)
    return [list(by_position[position]) if position is not None else empty for position in positions]


def _check_parquet_types(path: Path, schema: pa.Schema) -> None:
    for field in schema:
        name = str(field.name).lower()
        if name not in MASTER_COLUMNS:
            continue
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
            continue
        if name in _NUMBER_ALLOWED and pa.types.is_integer(kind):
            continue
        if name in _DATE_ALLOWED and pa.types.is_date(kind):
            continue
        expected = "text (string)"
        if name in _NUMBER_ALLOWED:
            expected += " or an integer"
        if name in _DATE_ALLOWED:
            expected += " or a date"
        why = (
            ": stored as a number it has already lost its leading zeros (02134 -> 2134)"
            if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            else ""
        )
        raise MasterFileError(
            f"{path}: column {field.name} has type {field.type}; expected {expected}{why}. "
            "Write it as text; the master was not replaced."
        )


def _read_parquet(
    path: Path, on_problem: Callable[[MasterRowProblem], None], on_bytes: Callable[[int], None]
) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise MasterFileError(f"{path}: not a readable Parquet file: {error}") from error
    found = [name.lower() for name in parquet.schema_arrow.names]
    _check_header(path, found)
    _check_parquet_types(path, parquet.schema_arrow)
    first_row = 1
    read = rejected = 0
    total_rows = parquet.metadata.num_rows
    size = path.stat().st_size
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            renamed = batch.rename_columns([name.lower() for name in batch.schema.names])
            present = [column for column in MASTER_COLUMNS if column in renamed.schema.names]
            texts = {column: renamed.column(column).cast(pa.string()) for column in present}
            keep = _without_quotes_or_breaks(path.name, first_row, texts, on_problem)
            if keep is not None:
                rejected += renamed.num_rows - len(keep)
                texts = {column: values.take(pa.array(keep, type=pa.int64())) for column, values in texts.items()}
            lines = [first_row + index for index in keep] if keep is not None else None
            kept_rows = len(keep) if keep is not None else renamed.num_rows
            columns = [
                [value or "" for value in texts[column].to_pylist()] if column in texts else [""] * kept_rows
                for column in MASTER_COLUMNS
            ]
            yield _table(path.name, columns, lines or list(range(first_row, first_row + kept_rows)))
            read += kept_rows
            first_row += renamed.num_rows
            on_bytes(int(size * renamed.num_rows / max(total_rows, 1)))
    except (OSError, pa.ArrowException) as error:
        raise MasterFileError(f"{path}: Parquet read failed after row {first_row - 1:,}: {error}") from error
    _check_accounting(path, total_rows, read, rejected)


def _without_quotes_or_breaks(
    file_name: str, first_row: int, texts: dict[str, pa.Array], on_problem: Callable[[MasterRowProblem], None]
) -> list[int] | None:
    """The positions of the rows to keep (None: all); a row with a quote or line break in a value is reported."""
    flags = {
        column: pc.fill_null(pc.match_substring_regex(values, _QUOTE_OR_BREAK), False)
        for column, values in texts.items()
    }
    if not any(pc.any(flag).as_py() for flag in flags.values()):
        return None
    as_lists = {column: flag.to_pylist() for column, flag in flags.items()}
    keep: list[int] = []
    for index in range(len(next(iter(texts.values())))):
        flagged = next((column for column, flag in as_lists.items() if flag[index]), None)
        if flagged is None:
            keep.append(index)
        else:
            on_problem(MasterRowProblem(file_name, first_row + index, _QUOTE_OR_BREAK_PROBLEM.format(flagged)))
    return keep


def read_master(
    path: Path,
    on_problem: Callable[[MasterRowProblem], None],
    on_bytes: Callable[[int], None] = lambda _: None,
) -> Iterator[pa.Table]:
    """Arrow batches of rows as read (all strings, plus source_file and source_line).

    Structural problems (a line that is not one well-quoted record of the header's width) are
    reported here; the values of the other rows are checked by `ROW_PROBLEM_SQL`. Raises
    `MasterFileError` (possibly mid-iteration, always before the master is replaced) when the
    file as a whole is unusable or its lines do not add up.
    """
    if not path.is_file():
        raise MasterFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return _read_csv(path, on_problem, on_bytes)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, on_problem, on_bytes)
    raise MasterFileError(f"{path}: unknown master file format {suffix!r}; use .csv or .parquet")
