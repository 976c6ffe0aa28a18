"""Streaming readers for request batches (CSV, NDJSON, Parquet).

Every reader yields one `RequestRecord` or `MalformedRecord` per input record, in file
order, holding at most one record (or one Parquet batch) in memory. A bad record never
stops the file: it becomes a `MalformedRecord` naming its line, so that it still gets
exactly one outcome line (`MALFORMED_RECORD`). Only problems with the file as a whole
(missing, unreadable, unknown format, header without the required columns) raise
`RequestFileError`.

Record numbering: `source_line` is the 1-based physical line where a CSV/NDJSON record
starts (the CSV header is line 1) or the 1-based row number of a Parquet file.

Request ids: a record whose `request_id` is empty is a `MalformedRecord` with
`request_id=None` and problem ``request_id is missing``; so is any malformed record whose
id cannot be recovered. Such a record is reported under the synthesized id
``line-<N>`` (N = its `source_line`); `outcome_request_id` is the single place that
rule lives.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import IO, Any, Literal

from taxmatch.io.csv_lines import (
    LineSplitter,
    field_name,
    line_text,
    looks_like_text,
    quote_problem,
    split_line,
    split_line_leniently,
)
from taxmatch.records import REQUEST_COLUMNS, Address, MalformedRecord, RequestRecord, field_filler

__all__ = [
    "MAX_FIELD_CHARS",
    "MAX_LINE_CHARS",
    "MAX_PRIOR_ADDRESSES",
    "MAX_ROW_CHARS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "RequestFileError",
    "outcome_request_id",
    "read_requests",
    "read_requests_from_text",
]

MAX_FIELD_CHARS = 1_000
MAX_ROW_CHARS = 10_000
# A record (or NDJSON line) longer than this is given up on without being parsed. It is
# far above MAX_ROW_CHARS so that a merely oversized row is still parsed (and its id
# recovered), and below csv's default field_size_limit (131,072) so csv never raises on
# field size and leaves the reader mid-record.
MAX_LINE_CHARS = 100_000
MAX_PRIOR_ADDRESSES = 50
# How many first lines decide whether a file is text of its declared kind at all.
_SNIFF_LINES = 100

# DESIGN.md section 3 names these optional; a header may omit them (they read as None).
OPTIONAL_COLUMNS: frozenset[str] = frozenset({"dob", "tin", "middle_name", "suffix", "unit"})
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in REQUEST_COLUMNS if c not in OPTIONAL_COLUMNS)
_ADDRESS_KEYS: tuple[str, ...] = ("street", "unit", "city", "state", "zip")
_BOM = b"\xef\xbb\xbf"
_ID_INDEX = REQUEST_COLUMNS.index("request_id")

Item = RequestRecord | MalformedRecord


class RequestFileError(ValueError):
    """The request file as a whole cannot be read; the message names the file."""


def new_lookup_request_id() -> str:
    """The id of a lookup sent without one (API or command line): unique, so that
    every lookup is an entry of its own in the ledger and in the accounting."""
    return f"lookup-{secrets.token_hex(6)}"


def outcome_request_id(record: RequestRecord | MalformedRecord) -> str:
    """The id an outcome line is written under: the record's own, else ``line-<N>``."""
    return record.request_id or f"line-{record.source_line}"


def read_requests(path: Path) -> Iterator[Item]:
    """Stream the requests of a .csv, .ndjson/.jsonl or .parquet file.

    File-level problems are raised eagerly (before the first record is requested) so a
    caller learns of a missing file or bad header at the call, not mid-iteration.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".ndjson", ".jsonl", ".parquet"):
        raise RequestFileError(
            f"{path}: unknown request file type {suffix or '(no extension)'!r}; "
            "expected .csv, .ndjson, .jsonl or .parquet"
        )
    if suffix == ".parquet":
        return _read_parquet(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise RequestFileError(f"{path}: cannot open request file: {error.strerror or error}") from error
    try:
        lines = _refuse_if_not_text(_file_lines(handle), "CSV" if suffix == ".csv" else "NDJSON", str(path))
        if suffix == ".csv":
            return _closing(_CsvStream(lines, str(path)).records(), handle)
    except BaseException:
        handle.close()
        raise
    return _closing(_ndjson_records(lines), handle)


def read_requests_from_text(
    text_or_lines: str | bytes | Iterable[str], kind: Literal["csv", "ndjson"]
) -> Iterator[Item]:
    """The same readers over an in-memory body (the HTTP API).

    A `str` or `bytes` is the whole body; any other iterable yields one line per item
    (with or without its newline). Raw `bytes` keep invalid UTF-8 confined to its line.
    """
    if kind not in ("csv", "ndjson"):
        raise RequestFileError(f"request body: unknown kind {kind!r}; expected 'csv' or 'ndjson'")
    lines = _refuse_if_not_text(_text_lines(text_or_lines), kind.upper(), "request body")
    if kind == "csv":
        return _CsvStream(lines, "request body").records()
    return _ndjson_records(lines)


def _refuse_if_not_text(lines: Iterator[bytes], kind: str, name: str) -> Iterator[bytes]:
    """`lines`, unless its first lines show it is not text of the declared kind (RequestFileError).

    Random bytes would otherwise be read as thousands of malformed records; a text file with
    a few damaged lines is read, and those lines are malformed records of their own.
    """
    sample = list(itertools.islice(lines, _SNIFF_LINES))
    if not looks_like_text(sample):
        raise RequestFileError(
            f"{name}: not a {kind} text file: most of its first lines hold invalid UTF-8 or control bytes"
        )
    objects = any(raw.lstrip(b"\xef\xbb\xbf \t").startswith(b"{") for raw in sample)
    if kind == "NDJSON" and not objects and any(raw.strip() for raw in sample):
        raise RequestFileError(f"{name}: not NDJSON: none of its first {len(sample)} lines is a JSON object")
    return itertools.chain(sample, lines)


# --- physical lines ---------------------------------------------------------------


def _closing(records: Iterator[Item], handle: IO[bytes]) -> Iterator[Item]:
    try:
        yield from records
    finally:
        handle.close()


def _file_lines(handle: IO[bytes]) -> Iterator[bytes]:
    """Physical lines split on b'\\n' only, each at most MAX_LINE_CHARS + 1 bytes.

    The cap keeps memory bounded on a file with no newlines: an over-long line is
    returned truncated (still over the limit, so it is reported) and its rest skipped.
    """
    cap = MAX_LINE_CHARS + 1
    readline = handle.readline
    while True:
        line = readline(cap)
        if not line:
            return
        if len(line) == cap and not line.endswith(b"\n"):
            while True:
                rest = readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


def _text_lines(text_or_lines: str | bytes | Iterable[str]) -> Iterator[bytes]:
    # Text is turned back into bytes so that both entry points share one decoder and so
    # that lone surrogates (a caller's surrogateescape) surface as invalid UTF-8 lines.
    if isinstance(text_or_lines, bytes):
        body = text_or_lines
        start = 0
        while start < len(body):
            end = body.find(b"\n", start)
            end = len(body) if end < 0 else end + 1
            yield body[start:end]
            start = end
        return
    items: Iterable[str] = [text_or_lines] if isinstance(text_or_lines, str) else text_or_lines
    for item in items:
        pieces = item.split("\n")
        for piece in pieces[:-1]:
            yield _encode(piece + "\n")
        if pieces[-1]:
            yield _encode(pieces[-1] + "\n")


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape" if _only_escapes(text) else "surrogatepass")


def _only_escapes(text: str) -> bool:
    return all(not ("\ud800" <= ch <= "\udfff") or "\udc80" <= ch <= "\udcff" for ch in text)


# --- CSV --------------------------------------------------------------------------


class _CsvStream:
    """Reads the header on construction (so header errors raise at the call).

    One physical line is one record (`taxmatch.io.csv_lines`): a quote left open at the end
    of a line makes that line a `MalformedRecord` and the next line is read as the next
    record, so no request can vanish into another's field.
    """

    def __init__(self, raw_lines: Iterator[bytes], name: str) -> None:
        self._name = name
        self._lines = enumerate(raw_lines, start=1)
        header = self._read_header()
        self._width = len(header)
        positions = {column: index for index, column in enumerate(header)}
        self._indexes: list[int | None] = [positions.get(column) for column in REQUEST_COLUMNS]
        self._in_contract_order = header == list(REQUEST_COLUMNS)
        self._names = self._header_names()

    def _read_header(self) -> list[str]:
        for number, raw in self._lines:
            if number == 1 and raw.startswith(_BOM):
                raw = raw[3:]
            if not raw.strip():
                continue
            if len(raw) > MAX_LINE_CHARS:
                raise RequestFileError(f"{self._name}: unreadable CSV header: longer than {MAX_LINE_CHARS:,} bytes")
            text, valid = line_text(raw)
            if not valid:
                raise RequestFileError(f"{self._name}: CSV header is not valid UTF-8")
            row = split_line(text) if "\r" not in text and "\x00" not in text else None
            if row is None:
                raise RequestFileError(
                    f"{self._name}: unreadable CSV header: a stray quote, carriage return or NUL byte"
                )
            break
        else:
            raise RequestFileError(f"{self._name}: empty CSV, no header row")
        header = [column.strip().lower() for column in row]
        duplicated = sorted({column for column in header if column and header.count(column) > 1})
        if duplicated:
            raise RequestFileError(f"{self._name}: CSV header repeats column(s): {', '.join(duplicated)}")
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise RequestFileError(
                f"{self._name}: CSV header lacks required column(s): {', '.join(missing)}; "
                f"found: {', '.join(header) or '(none)'}"
            )
        return header

    def records(self) -> Iterator[Item]:
        width = self._width
        indexes = self._indexes
        contract_order = self._in_contract_order
        split = LineSplitter().split
        for line, raw in self._lines:
            if len(raw) > MAX_LINE_CHARS:
                yield MalformedRecord(None, line, f"line {line}: longer than {MAX_LINE_CHARS:,} characters")
                continue
            text, valid = line_text(raw)
            if not text.strip():
                continue  # a blank line is not a record (docs/files.md)
            if "\r" in text:
                problem = f"line {line}: carriage return inside the line"
                yield MalformedRecord(self._id_before_break(text), line, problem)
                continue
            row = split(text)
            if row is None:
                yield self._broken_quote(text, line)
                continue
            if not valid or len(row) != width or "\x00" in text:
                yield self._malformed(row, line, valid)
                continue
            # The line's length bounds every field, so short rows (nearly all) skip the scan.
            if len(text) > MAX_FIELD_CHARS and (
                max(map(len, row)) > MAX_FIELD_CHARS or sum(map(len, row)) > MAX_ROW_CHARS
            ):
                yield self._malformed(row, line, valid)
                continue
            if contract_order:
                values = [value.strip() or None for value in row]
            else:
                values = [None if index is None else (row[index].strip() or None) for index in indexes]
            if values[_ID_INDEX] is None:
                yield MalformedRecord(None, line, "request_id is missing")
                continue
            yield _record(values, (), line)

    def _broken_quote(self, text: str, line: int) -> MalformedRecord:
        broken = quote_problem(text)
        if broken is None:
            return MalformedRecord(None, line, f"line {line}: not valid CSV")
        where = field_name(self._names, broken.field_index)
        fields = split_line_leniently(text)
        return MalformedRecord(
            self._id_before_field(fields, broken.field_index), line, f"line {line}: {where}: {broken.problem}"
        )

    def _id_before_field(self, fields: list[str], broken_index: int) -> str | None:
        # Only the fields before the broken one are known to be what the sender wrote.
        index = self._indexes[_ID_INDEX]
        if index is None or index >= broken_index or index >= len(fields):
            return None
        return _recoverable_id(fields[index])

    def _id_before_break(self, text: str) -> str | None:
        fields = split_line_leniently(text[: text.index("\r")])
        return self._id_before_field(fields, len(fields) - 1)

    def _malformed(self, row: list[str], line: int, valid: bool) -> MalformedRecord:
        problems: list[str] = []
        if not valid:
            problems.append("invalid UTF-8 bytes")
        if any("\x00" in value for value in row):
            problems.append("NUL byte")
        if len(row) != self._width:
            problems.append(f"{len(row)} fields where the header has {self._width}")
        else:
            for column, value in zip(self._names, row, strict=True):
                if len(value) > MAX_FIELD_CHARS:
                    problems.append(f"{column} has {len(value):,} characters (limit {MAX_FIELD_CHARS:,})")
            total = sum(map(len, row))
            if total > MAX_ROW_CHARS:
                problems.append(f"row has {total:,} characters (limit {MAX_ROW_CHARS:,})")
        index = self._indexes[_ID_INDEX]
        request_id = _recoverable_id(row[index] if index is not None and index < len(row) else None)
        return MalformedRecord(request_id, line, f"line {line}: " + "; ".join(problems))

    def _header_names(self) -> list[str]:
        names = [f"column {index + 1}" for index in range(self._width)]
        for column, index in zip(REQUEST_COLUMNS, self._indexes, strict=True):
            if index is not None:
                names[index] = column
        return names


def _record(values: list[str | None], prior: tuple[Address, ...], line: int) -> RequestRecord:
    v = values
    return RequestRecord(
        v[0],
        v[1],
        v[2],
        v[3],
        v[4],
        v[5],
        v[6],
        v[7],
        v[8],
        v[9],
        v[10],
        v[11],
        v[12],
        v[13],
        v[14],
        v[15],
        prior,
        line,
    )


_RECORD_FIELDS: tuple[str, ...] = (*REQUEST_COLUMNS, "prior_addresses", "source_line")
# A frozen dataclass's __init__ pays one object.__setattr__ per field, about half of the CSV
# reader's time per row (`field_filler`).
_fill_record = field_filler(RequestRecord)


def _record_fast(values: list[str | None], prior: tuple[Address, ...], line: int) -> RequestRecord:
    return _fill_record(*values, prior, line)


# `_record` relies on the dataclass declaring the request columns first, in contract order.
assert tuple(f.name for f in fields(RequestRecord))[: len(REQUEST_COLUMNS)] == REQUEST_COLUMNS
assert len(REQUEST_COLUMNS) == 16
if tuple(f.name for f in fields(RequestRecord)) == _RECORD_FIELDS:
    _record = _record_fast


def _recoverable_id(value: object) -> str | None:
    """An id worth echoing back: clean text of sane length, else None (-> line-<N>)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_FIELD_CHARS or "\ufffd" in value or "\x00" in value:
        return None
    if any("\ud800" <= char <= "\udfff" for char in value):
        return None
    return value


# --- NDJSON -----------------------------------------------------------------------


class _JsonNumber(str):
    """A JSON number kept as its literal text: 02134-style zips and long TINs survive."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_decode_json: Callable[[str], Any] = json.JSONDecoder(
    parse_int=_JsonNumber, parse_float=_JsonNumber, parse_constant=_reject_constant
).decode


def _ndjson_records(raw_lines: Iterator[bytes]) -> Iterator[Item]:
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1 and raw.startswith(_BOM):
            raw = raw[3:]
        if len(raw) > MAX_LINE_CHARS:
            yield MalformedRecord(None, number, f"line {number}: longer than {MAX_LINE_CHARS:,} characters")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield MalformedRecord(None, number, f"line {number}: invalid UTF-8 bytes")
            continue
        if not text.strip():
            continue
        try:
            value = _decode_json(text)
        except ValueError as error:
            yield MalformedRecord(None, number, f"line {number}: not valid JSON ({_short(str(error))})")
            continue
        except RecursionError:
            # Thousands of nested brackets exhaust the parser's stack: that line alone is malformed.
            yield MalformedRecord(None, number, f"line {number}: JSON nested too deeply")
            continue
        if not isinstance(value, dict):
            yield MalformedRecord(
                None, number, f"line {number}: a JSON {_json_type(value)} where an object is expected"
            )
            continue
        yield _record_from_mapping(value, number, f"line {number}")


def _record_from_mapping(mapping: dict[str, Any], number: int, where: str) -> Item:
    """Build a record from NDJSON/Parquet values, enforcing the CSV limits and types."""
    problems: list[str] = []
    values: list[str | None] = []
    total = 0
    get = mapping.get
    for column in REQUEST_COLUMNS:
        value = get(column)
        # Inline fast path for the usual short clean string; everything else is checked by _scalar.
        if value.__class__ is str and len(value) <= MAX_FIELD_CHARS and "\x00" not in value:
            text: str | None = value.strip() or None
        else:
            text, problem = _scalar(value, column)
            if problem:
                problems.append(problem)
        values.append(text)
        if text:
            total += len(text)
    if total > MAX_ROW_CHARS:
        problems.append(f"row has {total:,} characters (limit {MAX_ROW_CHARS:,})")
    prior: tuple[Address, ...] = ()
    if mapping.get("prior_addresses") is not None:
        prior, problem = _prior_addresses(mapping["prior_addresses"])
        if problem:
            problems.append(problem)
    if problems:
        return MalformedRecord(_recoverable_id(mapping.get("request_id")), number, f"{where}: " + "; ".join(problems))
    if values[_ID_INDEX] is None:
        return MalformedRecord(None, number, "request_id is missing")
    return _record(values, prior, number)


def _scalar(value: object, name: str) -> tuple[str | None, str | None]:
    """(stripped text or None, problem or None) for one JSON/Parquet value."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None, f"{name} is a {_json_type(value)}, not a string or number"
    text = str(value).strip()
    if len(text) > MAX_FIELD_CHARS:
        return None, f"{name} has {len(text):,} characters (limit {MAX_FIELD_CHARS:,})"
    if "\x00" in text:
        return None, f"{name} contains a NUL character"
    return text or None, None


def _prior_addresses(value: object) -> tuple[tuple[Address, ...], str | None]:
    if not isinstance(value, list):
        return (), f"prior_addresses is a {_json_type(value)}, not a list"
    if len(value) > MAX_PRIOR_ADDRESSES:
        return (), f"prior_addresses has {len(value)} entries (limit {MAX_PRIOR_ADDRESSES})"
    addresses: list[Address] = []
    for position, item in enumerate(value):
        where = f"prior_addresses[{position}]"
        if not isinstance(item, dict):
            return (), f"{where} is a {_json_type(item)}, not an object"
        # An address has a closed shape: a misspelt key ("zipcode") would otherwise
        # silently drop the part of the address that corroborates a match.
        unknown = sorted(str(key) for key in item if key not in _ADDRESS_KEYS)
        if unknown:
            return (), f"{where} has unknown key(s): {', '.join(unknown)}"
        parts: list[str | None] = []
        for key in _ADDRESS_KEYS:
            text, problem = _scalar(item.get(key), f"{where}.{key}")
            if problem:
                return (), problem
            parts.append(text)
        addresses.append(Address(*parts))
    return tuple(addresses), None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _short(message: str, limit: int = 80) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


# --- Parquet ----------------------------------------------------------------------

_PARQUET_BATCH_ROWS = 8_192


def _read_parquet(path: Path) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise RequestFileError(f"{path}: cannot open as Parquet: {error}") from error
    names = {str(field.name).strip().lower(): str(field.name) for field in parquet.schema_arrow}
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        parquet.close()
        raise RequestFileError(
            f"{path}: Parquet file lacks required column(s): {', '.join(missing)}; "
            f"found: {', '.join(names.values()) or '(none)'}"
        )
    wanted = [column for column in (*REQUEST_COLUMNS, "prior_addresses") if column in names]
    for column in wanted:
        arrow_type = parquet.schema_arrow.field(names[column]).type
        nested = pa.types.is_nested(arrow_type)
        if nested != (column == "prior_addresses"):
            parquet.close()
            raise RequestFileError(f"{path}: Parquet column {names[column]!r} has unsupported type {arrow_type}")
    return _parquet_records(path, parquet, names, wanted)


def _parquet_records(path: Path, parquet: Any, names: dict[str, str], wanted: list[str]) -> Iterator[Item]:
    import pyarrow as pa
    import pyarrow.compute as pc

    row_number = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=[names[c] for c in wanted]):
            columns: list[list[Any]] = []
            for position, column in enumerate(wanted):
                array = batch.column(position)
                if column != "prior_addresses" and not pa.types.is_string(array.type):
                    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
                        # Decoded per value below so one bad value costs one row.
                        columns.append([_decode_or_marker(v) for v in array.to_pylist()])
                        continue
                    array = pc.cast(array, pa.string())
                columns.append(array.to_pylist())
            for row in zip(*columns, strict=True):
                row_number += 1
                mapping = dict(zip(wanted, row, strict=True))
                bad = [column for column, value in mapping.items() if isinstance(value, _BadBytes)]
                if bad:
                    mapping = {k: v for k, v in mapping.items() if not isinstance(v, _BadBytes)}
                    yield MalformedRecord(
                        _recoverable_id(mapping.get("request_id")),
                        row_number,
                        f"row {row_number}: invalid UTF-8 bytes in {', '.join(bad)}",
                    )
                    continue
                yield _record_from_mapping(mapping, row_number, f"row {row_number}")
    except pa.ArrowException as error:
        raise RequestFileError(f"{path}: Parquet read failed after row {row_number}: {error}") from error
    finally:
        parquet.close()


class _BadBytes:
    """Marks a binary Parquet value that is not UTF-8."""


def _decode_or_marker(value: bytes | None) -> str | _BadBytes | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return _BadBytes()
