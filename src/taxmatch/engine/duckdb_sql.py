"""SQL text of the DuckDB engine: standardization CTEs, the blocked-pairs join and the columns
the point reads fetch. Built here, run by the job modules (ingest, fit, point reads, batch).
"""

from __future__ import annotations

from taxmatch.match.blocking import (
    BLOCK_KEY_JOINS,
    block_key_select_sql,
)
from taxmatch.match.model import (
    MODEL_INPUT_COLUMNS,
)
from taxmatch.match.scorer import CompiledScorer
from taxmatch.standardize.sql import street_name_sql

# Over the source row `s` joined to its per-value standardizations: `first`, `middle`, `last` and
# `city` (tm_fold_name of that field, in `folded`), `place` (street and unit parts) and `n` (the
# street name). Each regular expression runs once per distinct value, not once per row: a master
# of 3M returns has a few hundred thousand distinct streets and names.
_MODEL_INPUT_SELECT = """
    nullif(coalesce(first.folded, ''), '') AS first_name,
    nullif(substr(coalesce(middle.folded, ''), 1, 1), '') AS middle_initial,
    nullif(coalesce(last.folded, ''), '') AS last_name,
    list_filter(string_split(coalesce(last.folded, ''), ' '),
        t -> t <> '' AND t NOT IN ('DE', 'DEL', 'LA', 'LAS', 'LOS', 'Y', 'DA', 'DOS', 'VAN', 'VON')) AS surname_tokens,
    nullif(tm_suffix(s.suffix), '') AS suffix,
    nullif(s.dob, '') AS dob,
    tm_tin(s.tin) AS tin,
    place.house_number AS house_number,
    CASE WHEN place.is_po_box THEN 'PO BOX' ELSE nullif(n.street_name, '') END AS street_name,
    CASE WHEN place.is_po_box THEN 'POBOX' ELSE nullif(n.street_line, '') END AS street_line,
    CASE WHEN place.is_po_box THEN 'POBOX' ELSE nullif(n.street_bare, '') END AS street_bare,
    CASE WHEN place.is_po_box THEN NULL ELSE nullif(n.street_dirs, '') END AS street_dirs,
    CASE WHEN place.is_po_box THEN NULL ELSE nullif(n.street_type, '') END AS street_type,
    place.unit_standard AS unit,
    nullif(tm_zip5(s.zip), '') AS zip5,
    nullif(coalesce(city.folded, ''), '') AS city,
    nullif(tm_state(s.state), '') AS state
"""


_RETURN_COLUMNS = """m.return_id, m.tin, m.tax_year, m.role, m.first_name_raw, m.middle_name_raw, m.last_name_raw,
    m.suffix_raw, m.street_raw, m.unit_raw, m.city_raw, m.state_raw, m.zip_raw, m.phone_raw"""


def _sql_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


_CANDIDATE_COLUMNS = ", ".join(("return_id", *(c for c in MODEL_INPUT_COLUMNS if c != "unique_id")))
_POINT_ROW_COLUMNS = tuple(c for c in MODEL_INPUT_COLUMNS if c != "unique_id")
# JSON keeps the lists (first_forms, surname_tokens) as lists and NULL as None: the values the
# columns give, so the Python scorer sees the same row whichever way it was read.
_POINT_ROW_SQL = f"CAST(json_array({', '.join(_POINT_ROW_COLUMNS)}) AS VARCHAR)"


def _standardized_ctes(source: str, carried_columns: str) -> str:
    """CTEs ending in `standardized`: carried columns, model input columns (but first_forms) and block keys.

    The standardization macros run on distinct values (names, street lines) and are joined back:
    the same macros on the same values, so the same result as calling them row by row.
    """
    return f"""name_values AS (
            SELECT DISTINCT value FROM (
                SELECT first_name AS value FROM {source} UNION ALL SELECT middle_name FROM {source}
                UNION ALL SELECT last_name FROM {source} UNION ALL SELECT city FROM {source})
            WHERE value IS NOT NULL),
        folded AS (SELECT value, tm_fold_name(value) AS folded FROM name_values),
        place_values AS (SELECT DISTINCT street AS place_street, unit AS place_unit FROM {source}),
        places AS (
            SELECT place_street, place_unit,
                   coalesce(nullif(tm_house_number(place_street), ''), nullif(tm_po_box(place_street), ''))
                       AS house_number,
                   tm_house_number(place_street) = '' AND tm_po_box(place_street) <> '' AS is_po_box,
                   tm_street_core(place_street) AS street_core,
                   nullif(tm_unit(place_unit, place_street), '') AS unit_standard
            FROM place_values),
        street_names AS ({street_name_sql("SELECT street_core FROM places")}),
        standardized_columns AS (
            SELECT {carried_columns}, {_MODEL_INPUT_SELECT}
            FROM {source} s
            LEFT JOIN folded first ON first.value = s.first_name
            LEFT JOIN folded middle ON middle.value = s.middle_name
            LEFT JOIN folded last ON last.value = s.last_name
            LEFT JOIN folded city ON city.value = s.city
            LEFT JOIN places place
              ON place.place_street IS NOT DISTINCT FROM s.street AND place.place_unit IS NOT DISTINCT FROM s.unit
            LEFT JOIN street_names n ON n.street_core = place.street_core),
        standardized AS (SELECT *, {block_key_select_sql()} FROM standardized_columns)"""


def _scored_pairs_input_cte(
    scorer: CompiledScorer, requests_relation: str, source: str, source_has_term_frequencies: bool = False
) -> str:
    """`scored_pairs_input`: each blocked (request row, return) pair once, with both sides' model columns.

    The pair ids come from one join per blocking key, each leaving out the pairs an earlier key
    already gave: a union of disjoint parts needs no de-duplication, and each join builds its
    hash table on the requests and streams the master's key column past it. The wide columns are
    then joined on, the master's side only for the profiles some pair names (a semi-join first).
    Term frequencies are joined to the requests before the pairs; the master's profiles carry
    theirs (`source_has_term_frequencies`, since `fit_model` stores them there), else they are
    joined to every pair, which costs ~0.4 s at 1.5M pairs.
    """
    sides = ", ".join(
        f"l.{column} AS {column}_l, r.{column} AS {column}_r" for column in MODEL_INPUT_COLUMNS if column != "unique_id"
    )
    parts = []
    for position, (request_column, master_column) in enumerate(BLOCK_KEY_JOINS):
        earlier = "".join(
            f" AND (l.{earlier_request} = r.{earlier_master}) IS NOT TRUE"
            for earlier_request, earlier_master in BLOCK_KEY_JOINS[:position]
        )
        parts.append(
            f"SELECT l.unique_id AS request_uid, r.return_id "
            f"FROM {requests_relation} l JOIN {source} r ON l.{request_column} = r.{master_column}{earlier}"
        )
    blocked = "\n        UNION ALL ".join(parts)
    columns = scorer.term_frequency_columns
    requests_with_frequencies = (
        f"(SELECT q.*{''.join(f', tf_{column}.tf_{column}' for column in columns)} FROM {requests_relation} q"
        + "".join(f" LEFT JOIN tf_{column} ON tf_{column}.{column} = q.{column}" for column in columns)
        + ")"
    )
    if source_has_term_frequencies:
        master_frequencies = "".join(f", r.tf_{column} AS tf_{column}_r" for column in columns)
        master_joins = ""
    else:
        master_frequencies = "".join(f", tfr_{column}.tf_{column} AS tf_{column}_r" for column in columns)
        master_joins = "".join(
            f" LEFT JOIN tf_{column} tfr_{column} ON tfr_{column}.{column} = r.{column}" for column in columns
        )
    request_frequencies = "".join(f", l.tf_{column} AS tf_{column}_l" for column in columns)
    return f"""blocked_pairs AS ({blocked}),
    scored_pairs_input AS (
        SELECT p.request_uid, p.return_id, l.request_index, r.tin AS pair_tin,
               {sides}{request_frequencies}{master_frequencies}
        FROM blocked_pairs p
        JOIN {requests_with_frequencies} l ON l.unique_id = p.request_uid
        JOIN (SELECT * FROM {source} WHERE return_id IN (SELECT return_id FROM blocked_pairs)) r
          ON r.return_id = p.return_id{master_joins})"""
