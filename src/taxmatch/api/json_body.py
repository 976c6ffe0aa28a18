"""JSON request bodies read with a nesting limit.

Python's json module recurses once per ``[`` or ``{``: 30,000 nested brackets raise
RecursionError, which is no ValueError and became a 500. A lookup object nests three deep at
most (object, ``prior_addresses`` list, address object), so anything deeper than
`MAX_JSON_DEPTH` is refused before parsing, as a client error.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 16
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")


class JsonBodyError(ValueError):
    """The body is not acceptable JSON; the message says why (never quoting the body)."""


def nesting_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` anywhere in ``body`` (brackets in strings don't count)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot nest deeper than the number of openers: the usual lookup, no scan
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed body; JsonBodyError if it is not JSON or nests deeper than ``max_depth``."""
    if nesting_depth_exceeds(body, max_depth):
        raise JsonBodyError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except RecursionError:  # unreachable after the depth check; kept so that it can never be a 500
        raise JsonBodyError(f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise JsonBodyError(f"not JSON: {error}") from None
