"""Standardization as DuckDB SQL macros, so millions of rows never pass through Python.

The master file and the requests are standardized by these same macros, which is what
makes their comparison fair. The tables behind them (USPS Publication 28) live in
`standardize.usps`; `standardize.names.fold_name` is the Python twin of `tm_fold_name`
(a test pins the two together).
"""

from __future__ import annotations

from taxmatch.standardize.usps import STREET_TOKEN_STANDARD, UNIT_DESIGNATORS


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _street_token_map() -> str:
    entries = ", ".join(f"{_sql_string(k)}: {_sql_string(v)}" for k, v in sorted(STREET_TOKEN_STANDARD.items()))
    return "MAP {" + entries + "}"


_UNIT_WORDS = "|".join(sorted((designator for designator in UNIT_DESIGNATORS if designator != "#"), key=len)[::-1])


def standardization_macros() -> list[str]:
    """CREATE MACRO statements; idempotent (CREATE OR REPLACE), run on every connection that standardizes."""
    return [
        # Names: accents off, upper case, hyphens to spaces, apostrophes and dots dropped, other non-letters to space.
        r"""CREATE OR REPLACE MACRO tm_fold_name(x) AS
            trim(regexp_replace(regexp_replace(
                replace(replace(replace(strip_accents(upper(coalesce(x, ''))), '-', ' '), '''', ''), '.', ''),
                '[^A-Z ]+', ' ', 'g'), '\s+', ' ', 'g'))""",
        r"""CREATE OR REPLACE MACRO tm_clean_street(x) AS
            trim(regexp_replace(regexp_replace(replace(strip_accents(upper(coalesce(x, ''))), '.', ''),
                '[^A-Z0-9# ]+', ' ', 'g'), '\s+', ' ', 'g'))""",
        r"""CREATE OR REPLACE MACRO tm_house_number(x) AS
            regexp_extract(tm_clean_street(x), '^(\d+)', 1)""",
        r"""CREATE OR REPLACE MACRO tm_po_box(x) AS
            regexp_extract(tm_clean_street(x), '^(?:P ?O ?)?BOX ([A-Z0-9]+)', 1)""",
        # Street name without house number and without any unit that was written on the same line.
        rf"""CREATE OR REPLACE MACRO tm_street_name(x) AS
            array_to_string(list_transform(
                list_filter(string_split(regexp_replace(regexp_replace(tm_clean_street(x),
                    '^\d+[A-Z]?( \d/\d)? ?', ''), '( (?:{_UNIT_WORDS})\b| ?#).*$', ''), ' '), t -> t <> ''),
                t -> coalesce({_street_token_map()}[t], t)), ' ')""",
        rf"""CREATE OR REPLACE MACRO tm_unit_on_street(x) AS
            regexp_extract(tm_clean_street(x), '(?: (?:{_UNIT_WORDS})\b| ?#) ?#? ?([A-Z0-9]+)$', 1)""",
        rf"""CREATE OR REPLACE MACRO tm_unit(unit_text, street_text) AS
            coalesce(nullif(regexp_replace(regexp_replace(tm_clean_street(unit_text),
                '^(?:(?:{_UNIT_WORDS})\b)? ?#? ?', ''), '[^A-Z0-9]', '', 'g'), ''),
                tm_unit_on_street(street_text))""",
        r"""CREATE OR REPLACE MACRO tm_zip5(x) AS
            left(regexp_replace(coalesce(x, ''), '[^0-9]', '', 'g'), 5)""",
        r"""CREATE OR REPLACE MACRO tm_tin(x) AS
            nullif(regexp_replace(coalesce(x, ''), '[^0-9]', '', 'g'), '')""",
        r"""CREATE OR REPLACE MACRO tm_state(x) AS upper(trim(coalesce(x, '')))""",
    ]
