"""Blocking: which (request, return) pairs are scored at all. Each key is declared once, here.

A pair is scored when any family of keys agrees. Each key is one column, the `|`-joined values of
its parts when every part has one, so that an on-demand lookup is a handful of ART index point
reads and a batch one equi-join per key. Every part is declared with its SQL (over the
standardized columns, see `engine.duckdb_sql._standardized_ctes`) and its Python twin (over
`standardize.python_standardizer.standardize_row`'s row); the engine generates the SQL select
from `BLOCKING_KEYS`, the on-demand path calls `block_keys`, and a test holds the twins together
on awkward rows.

Together the keys find the person when any one field of the request is wrong:
- key_address (ZIP, house number): the previous address; corroboration needs it, and it finds
  every other taxpayer at that address for the household rule;
- key_name (first, last, state), and the request's swapped order against it: after a move;
- key_full_name (first, middle initial, last) in any state finds the Jr or Sr who files
  elsewhere: the generation rule needs to see them to refuse a request that does not say which;
- key_tin;
- key_surname1/2 (first and last surname word, each with the date of birth), crossed, so a
  request with one of two surnames finds the return that carries both, and the other way round;
- key_dob_initials (date of birth and both initials, in either order): a typo in both names,
  names swapped, a ZIP keyed wrong;
- key_house_street (house number and the street line, in any place): a ZIP or state keyed
  wrong together with a name typo;
- key_given_dob (given name and date of birth): a surname changed (marriage) or keyed beyond
  recognition, together with a move or a ZIP keyed wrong: the surname-change rule needs to see it.
- key_dob_zip (date of birth and ZIP): both names keyed wrong or one replaced, and the house
  number as well; in one ZIP a birth date names a handful of people, a twin among them, whom the
  household rule needs to see.

Not kept: one name with the other's initial and the ZIP. It raised FEBRL's blocking recall by
about half a point but found no request that was then disclosed (FEBRL3 and keyed synth: the same
disclosures without it), and at 1M people its two keys were 600k of 1.29M candidate pairs for 50k
requests and a fifth of a batch's time (12.2-13.2 s against 15.3-16.1 s for 100k requests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class KeyPart:
    """One value of a key: SQL over the standardized columns, and the same in Python."""

    sql: str
    python: Callable[[Row], str | None]


def _column(name: str) -> KeyPart:
    return KeyPart(name, lambda row: row[name])


def _first_surname(row: Row) -> str | None:
    tokens = row["surname_tokens"]
    return tokens[0] if tokens else None


def _last_surname(row: Row) -> str | None:
    tokens = row["surname_tokens"]
    return tokens[-1] if tokens and len(tokens) > 1 else None


def _initials(row: Row) -> str | None:
    first, last = row["first_name"], row["last_name"]
    return "".join(sorted((first[0], last[0]))) if first and last else None


_COLUMN_PARTS = (
    "zip5", "house_number", "first_name", "last_name", "state", "middle_initial", "tin", "dob", "street_line",
)  # fmt: skip
PARTS: dict[str, KeyPart] = {
    **{name: _column(name) for name in _COLUMN_PARTS},
    "first_surname": KeyPart("CASE WHEN len(surname_tokens) > 0 THEN surname_tokens[1] END", _first_surname),
    "last_surname": KeyPart("CASE WHEN len(surname_tokens) > 1 THEN surname_tokens[-1] END", _last_surname),
    "initials": KeyPart(
        "CASE WHEN first_name IS NOT NULL AND last_name IS NOT NULL THEN least(left(first_name, 1),"
        " left(last_name, 1)) || greatest(left(first_name, 1), left(last_name, 1)) END",
        _initials,
    ),
}


@dataclass(frozen=True)
class BlockingKey:
    column: str
    parts: tuple[str, ...]
    # Master keys that a large population shares widely (every JOSE GARCIA in TX, every 1 MAIN
    # STREET): a key shared by more returns than MAX_RETURNS_PER_CAPPED_KEY finds namesakes and
    # strangers, not the person (the address key does that); capping bounds a request's candidates.
    capped: bool = False
    # Computed for requests only, and joined to another key's master column.
    request_only: bool = False


BLOCKING_KEYS: tuple[BlockingKey, ...] = (
    BlockingKey("key_address", ("zip5", "house_number")),
    BlockingKey("key_name", ("first_name", "last_name", "state"), capped=True),
    BlockingKey("key_name_swapped", ("last_name", "first_name", "state"), request_only=True),
    BlockingKey("key_full_name", ("first_name", "middle_initial", "last_name"), capped=True),
    BlockingKey("key_tin", ("tin",)),
    BlockingKey("key_surname1", ("first_surname", "dob")),
    BlockingKey("key_surname2", ("last_surname", "dob")),
    BlockingKey("key_dob_initials", ("dob", "initials"), capped=True),
    BlockingKey("key_house_street", ("house_number", "street_line"), capped=True),
    BlockingKey("key_given_dob", ("first_name", "dob"), capped=True),
    BlockingKey("key_dob_zip", ("dob", "zip5")),
)
# (request column, master column): a pair is blocked when they are equal. Earlier joins win: a
# pair found by one is left out of the later ones.
BLOCK_KEY_JOINS: tuple[tuple[str, str], ...] = (
    ("key_address", "key_address"),
    ("key_name", "key_name"),
    ("key_name_swapped", "key_name"),
    ("key_full_name", "key_full_name"),
    ("key_tin", "key_tin"),
    ("key_surname1", "key_surname1"),
    ("key_surname1", "key_surname2"),
    ("key_surname2", "key_surname1"),
    ("key_surname2", "key_surname2"),
    ("key_dob_initials", "key_dob_initials"),
    ("key_house_street", "key_house_street"),
    ("key_given_dob", "key_given_dob"),
    ("key_dob_zip", "key_dob_zip"),
)
KEY_COLUMNS: tuple[str, ...] = tuple(key.column for key in BLOCKING_KEYS)
MASTER_KEY_COLUMNS: tuple[str, ...] = tuple(key.column for key in BLOCKING_KEYS if not key.request_only)
CAPPED_KEY_COLUMNS: tuple[str, ...] = tuple(key.column for key in BLOCKING_KEYS if key.capped)
MAX_RETURNS_PER_CAPPED_KEY = 100


def _key_sql(key: BlockingKey) -> str:
    parts = [f"({PARTS[name].sql})" for name in key.parts]
    present = " AND ".join(f"{part} IS NOT NULL" for part in parts)
    joined = " || '|' || ".join(parts)
    return f"CASE WHEN {present} THEN {joined} END AS {key.column}"


def block_key_select_sql() -> str:
    """The select list that adds every key column to a standardized row."""
    return ",\n    ".join(_key_sql(key) for key in BLOCKING_KEYS)


def block_keys(row: Row) -> dict[str, str | None]:
    """The key columns of one standardized row: the Python twin of `block_key_select_sql`."""
    keys: dict[str, str | None] = {}
    for key in BLOCKING_KEYS:
        values = [value for value in (PARTS[name].python(row) for name in key.parts) if value]
        keys[key.column] = "|".join(values) if len(values) == len(key.parts) else None
    return keys
