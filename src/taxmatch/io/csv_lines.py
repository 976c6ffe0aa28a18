"""The CSV line rule shared by the master and request readers (docs/files.md, "Reading CSV").

One physical line is one record. A quoted field may hold commas and doubled quotes but
never a line break: a quote still open at the end of its line makes that line malformed
instead of joining the following lines into one record. No field of a master return or a
request holds a line break, so the rule loses nothing real, and it means a stray quote
costs exactly its own line, every line is accounted for, and line N is record N.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

# Text that is not CSV or NDJSON at all: control characters other than tab, CR and LF.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class QuoteProblem:
    field_index: int  # 0-based position of the field whose quoting is broken
    problem: str  # what is wrong, in words, without the value


def line_text(raw: bytes) -> tuple[str, bool]:
    """(the line without its LF or CRLF ending, whether its bytes were valid UTF-8).

    Invalid bytes are replaced (U+FFFD), so that one bad byte costs its own line only.
    """
    try:
        text = raw.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        valid = False
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text, valid


class _QuoteStillOpen(Exception):
    """The csv module asked for a second line: a quote is open at the end of the line."""


class LineSplitter:
    """Splits lines into fields by the rule; one per reader (it keeps a csv reader between lines).

    The csv module asks its input for another line only when a quote is still open at the end
    of the current one; this input has none to give, so that becomes "broken" instead of a
    licence to read on. One csv reader kept across lines costs half as much as one per line.
    Not thread-safe: each reader (and thread) has its own.
    """

    __slots__ = ("_line", "_reader")

    def __init__(self) -> None:
        self._line: str | None = None
        self._reader = csv.reader(self, strict=True)

    def __iter__(self) -> LineSplitter:
        return self

    def __next__(self) -> str:
        line = self._line
        if line is None:
            raise _QuoteStillOpen
        self._line = None
        return line

    def split(self, text: str) -> list[str] | None:
        """The fields of one line (without its line ending), or None if its quoting is broken.

        Broken means a quote still open at the end of the line, or text after a closing quote
        (`"abc"x`). A quote inside an unquoted field (`O"Brien`) is kept as a character: each
        reader then decides whether its fields may hold one.
        """
        if '"' not in text:
            return text.split(",")
        self._line = text
        try:
            return next(self._reader)
        except (_QuoteStillOpen, csv.Error):
            self._line = None
            return None


def split_line(text: str) -> list[str] | None:
    """`LineSplitter.split` for a single line (a header, a test)."""
    return LineSplitter().split(text)


def split_line_leniently(text: str) -> list[str]:
    """The fields of a line whose quoting is broken, as far as they can be told apart.

    The fields before the broken one (`quote_problem`) are exact; the broken one runs to the
    end of the line. Used only to recover a record's id for its error.
    """
    return next(csv.reader((text,)), [])


def quote_problem(text: str) -> QuoteProblem | None:
    """Which field of a line has broken quoting, and how; None if its quoting is sound."""
    position = 0
    index = 0
    while True:
        if text.startswith('"', position):
            close = position + 1
            while True:
                close = text.find('"', close)
                if close < 0:
                    return QuoteProblem(index, "quote not closed before the end of the line")
                if not text.startswith('"', close + 1):
                    break
                close += 2
            position = close + 1
            if position < len(text) and text[position] != ",":
                return QuoteProblem(index, "text after the closing quote")
        else:
            comma = text.find(",", position)
            position = len(text) if comma < 0 else comma
        if position >= len(text):
            return None
        position += 1
        index += 1


def field_name(names: list[str], index: int) -> str:
    """The header's name for field `index`, or its position past the header's width."""
    return names[index] if index < len(names) and names[index] else f"field {index + 1}"


def is_binary_text(text: str) -> bool:
    """Whether decoded text holds control characters that no CSV or NDJSON text has."""
    return _CONTROL_CHARACTERS.search(text) is not None


def looks_like_text(raw_lines: list[bytes]) -> bool:
    """Whether most non-blank lines of a sample are UTF-8 text without control characters.

    Random or binary bytes fail on nearly every line; a text file with a few damaged lines
    passes, and those lines are then malformed records of their own.
    """
    checked = bad = 0
    for raw in raw_lines:
        if not raw.strip():
            continue
        checked += 1
        text, valid = line_text(raw)
        if not valid or is_binary_text(text):
            bad += 1
    return bad * 2 <= checked
