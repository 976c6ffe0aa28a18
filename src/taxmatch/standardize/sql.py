"""Standardization as DuckDB SQL macros, so millions of rows never pass through Python.

The master file and the requests are standardized by these same macros, which is what
makes their comparison fair. The tables behind them (USPS Publication 28) live in
`standardize.usps`; `standardize.names.fold_name` is the Python twin of `tm_fold_name`
(a test pins the two together).
"""

from __future__ import annotations

from taxmatch.standardize.names import NAME_SUFFIXES
from taxmatch.standardize.usps import DIRECTION_STANDARDS, STREET_TOKEN_STANDARD, SUFFIX_LONG_FORMS, UNIT_DESIGNATORS


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def street_token_table_sql() -> str:
    """A temporary table of USPS word -> standard form, its kind and long form, for `street_name_sql`."""

    def row(token: str, standard: str) -> str:
        kind = "dir" if standard in DIRECTION_STANDARDS else "suffix"
        long_form = standard if kind == "dir" else SUFFIX_LONG_FORMS[standard]
        return f"({_sql_string(token)}, {_sql_string(standard)}, {_sql_string(kind)}, {_sql_string(long_form)})"

    rows = ", ".join(row(token, standard) for token, standard in sorted(STREET_TOKEN_STANDARD.items()))
    return (
        "CREATE OR REPLACE TEMP TABLE tm_street_tokens (token VARCHAR, standard VARCHAR, kind VARCHAR, long VARCHAR); "
        f"INSERT INTO tm_street_tokens VALUES {rows}"
    )


def street_name_sql(cores_query: str) -> str:
    """Standard street names for the distinct street cores that `cores_query` selects (column street_core).

    Beside the standard name (`N MAIN ST`), the parts that a comparison independent of how the
    line was parsed needs (`python_standardizer.street_parts` is the twin):
    - street_line: the words as written without directionals and spaces, the last one in its long
      form when it is a suffix (`N Main St` -> `MAINSTREET`): `28 hollwaystreet`, `2 tasman p lace`,
      `oxley st reet` and `Tasman Pl` compare on it (a suffix inside the line stays as keyed);
    - street_dirs: the directionals (`N`), so that a missing one agrees and another one does not;
    - street_type: the standard suffix when the last word is one (`ST`), so 12 Oak Ct is not 12 Oak St;
    - street_bare: street_line without that suffix (`MAIN`), so `309 Maple` agrees with `309 Maple St`.
    A street of one word besides directionals is named by that word, even one that is also a suffix
    (`39 E Hill`: line and bare `HILL`, no type), so that it too agrees with `39 E Hill Pl`.
    A line of nothing but directionals keeps them in street_line (`N` alone is a name then).
    Works on distinct values, so a master of millions of returns costs one pass over its distinct streets.
    """
    return f"""
        WITH cores AS (SELECT DISTINCT street_core FROM ({cores_query}) WHERE street_core <> ''),
        tokens AS (
            SELECT street_core, len(string_split(street_core, ' ')) AS words,
                   unnest(generate_series(1, len(string_split(street_core, ' ')))) AS position,
                   unnest(string_split(street_core, ' ')) AS token
            FROM cores)
        SELECT street_core, street_name,
               -- A street named by one word that is also a suffix (`39 E Hill`, `125 Center`): that
               -- word is its name, not its type, so `39 E Hill Pl` is the same street with the suffix.
               CASE WHEN name_words = 1 THEN name_as_keyed ELSE street_line END AS street_line,
               CASE WHEN name_words = 1 THEN name_as_keyed ELSE street_bare END AS street_bare,
               street_dirs,
               CASE WHEN name_words = 1 THEN '' ELSE street_type END AS street_type
        FROM (
        SELECT street_core, string_agg(coalesce(u.standard, token), ' ' ORDER BY position) AS street_name,
               coalesce(string_agg(CASE WHEN u.kind IS DISTINCT FROM 'dir'
                                        THEN CASE WHEN position = words THEN coalesce(u.long, token) ELSE token END
                                   END, '' ORDER BY position),
                        string_agg(coalesce(u.standard, token), '' ORDER BY position)) AS street_line,
               string_agg(CASE WHEN u.kind IS DISTINCT FROM 'dir'
                                    AND NOT (position = words AND u.kind IS NOT DISTINCT FROM 'suffix')
                               THEN token END, '' ORDER BY position) AS street_bare,
               string_agg(CASE WHEN u.kind = 'dir' THEN u.standard END, ' ' ORDER BY position) AS street_dirs,
               arg_max(CASE WHEN u.kind = 'suffix' THEN u.standard ELSE '' END, position) AS street_type,
               count(*) FILTER (WHERE u.kind IS DISTINCT FROM 'dir') AS name_words,
               string_agg(CASE WHEN u.kind IS DISTINCT FROM 'dir' THEN token END, '' ORDER BY position)
                   AS name_as_keyed
        FROM tokens LEFT JOIN tm_street_tokens u USING (token)
        WHERE token <> ''
        GROUP BY street_core)"""


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
        # The street line without house number and without a unit written on the same line. Its words are then
        # mapped to USPS standard forms by `street_name_sql` (a join: a MAP literal per row is 100x slower).
        rf"""CREATE OR REPLACE MACRO tm_street_core(x) AS
            trim(regexp_replace(regexp_replace(tm_clean_street(x),
                '^\d+[A-Z]?( \d/\d)? ?', ''), '( (?:{_UNIT_WORDS})\b| ?#).*$', ''))""",
        rf"""CREATE OR REPLACE MACRO tm_unit_on_street(x) AS
            regexp_extract(tm_clean_street(x), '(?: (?:{_UNIT_WORDS})\b| ?#) ?#? ?([A-Z0-9]+)$', 1)""",
        rf"""CREATE OR REPLACE MACRO tm_unit(unit_text, street_text) AS
            coalesce(nullif(regexp_replace(regexp_replace(tm_clean_street(unit_text),
                '^(?:(?:{_UNIT_WORDS})\b)? ?#? ?', ''), '[^A-Z0-9]', '', 'g'), ''),
                tm_unit_on_street(street_text))""",
        # Jr. / JUNIOR / jr -> JR; 2ND -> II: one spelling per generation.
        f"""CREATE OR REPLACE MACRO tm_suffix(x) AS
            CASE upper(replace(replace(coalesce(x, ''), '.', ''), ' ', ''))
                {" ".join(f"WHEN {_sql_string(k)} THEN {_sql_string(v)}" for k, v in sorted(NAME_SUFFIXES.items()))}
                ELSE upper(replace(replace(coalesce(x, ''), '.', ''), ' ', '')) END""",
        r"""CREATE OR REPLACE MACRO tm_zip5(x) AS
            left(regexp_replace(coalesce(x, ''), '[^0-9]', '', 'g'), 5)""",
        r"""CREATE OR REPLACE MACRO tm_tin(x) AS
            nullif(regexp_replace(coalesce(x, ''), '[^0-9]', '', 'g'), '')""",
        r"""CREATE OR REPLACE MACRO tm_state(x) AS upper(trim(coalesce(x, '')))""",
    ]
