"""The compiled scorer's rewrites for speed give the verdicts of the SQL they rewrite."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest

from taxmatch.match.model import settings_creator
from taxmatch.match.scorer import compile_scorer, guard_edit_distances, share_an_element

# Awkward letters: ASCII, two- and three-byte characters, a combining accent, a four-byte emoji.
_ALPHABET = ("A", "B", "E", "1", " ", "-", "é", "É", "e\u0301", "ß", "ğ", "€", "😀")
_BOUNDS = ("0", "1", "2", "CASE WHEN least(length(x_l), length(x_r)) >= 10 THEN 2 ELSE 1 END")


def _edited(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 3)):
        position = rng.randrange(len(text) + 1)
        kind = rng.choice(("substitute", "swap", "insert", "drop"))
        if kind == "insert" or not text:
            text = text[:position] + rng.choice(_ALPHABET) + text[position:]
        elif kind == "substitute":
            text = text[:position] + rng.choice(_ALPHABET) + text[position + 1 :]
        elif kind == "swap" and position + 1 < len(text):
            text = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
        else:
            text = text[:position] + text[position + 1 :]
    return text


def _awkward_pairs() -> list[tuple[str | None, str | None]]:
    rng = random.Random(20261208)
    pairs: list[tuple[str | None, str | None]] = []
    for _ in range(20_000):
        left = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 14)))
        choice = rng.random()
        if choice < 0.1:
            right = left
        elif choice < 0.8:
            right = _edited(left, rng)
        else:
            right = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 14)))
        pairs.append((left, right))
    pairs += [(None, "A"), ("A", None), (None, None), ("", ""), ("", "A"), ("e\u0301", "e"), ("é", "e"), ("😀", "")]
    return pairs


@pytest.fixture(scope="module")
def connection() -> duckdb.DuckDBPyConnection:
    pairs = _awkward_pairs()
    connection = duckdb.connect()
    connection.register("pairs", pa.table({"x_l": [left for left, _ in pairs], "x_r": [right for _, right in pairs]}))
    return connection


def test_duckdb_counts_the_edit_distance_in_bytes(connection: duckdb.DuckDBPyConnection) -> None:
    # What the length check rests on: each edit changes the length in bytes by at most one. A
    # DuckDB counting characters would make `e` and `e` + combining accent one edit apart.
    found = connection.execute(
        "SELECT damerau_levenshtein('e\u0301', 'e'), damerau_levenshtein('é', 'e'), damerau_levenshtein('😀', '')"
    ).fetchone()
    assert found == (2, 2, 4)


@pytest.mark.parametrize("bound", _BOUNDS)
def test_the_guarded_edit_distance_gives_the_plain_verdicts(connection: duckdb.DuckDBPyConnection, bound: str) -> None:
    plain = f"damerau_levenshtein(x_l, x_r) <= {bound}"
    guarded = guard_edit_distances(f"({plain})")
    assert "strlen(x_l)" in guarded, "the condition should have been rewritten"
    differing = connection.execute(
        f"SELECT x_l, x_r FROM pairs WHERE ({guarded}) IS DISTINCT FROM ({plain})"
    ).fetchall()
    close = connection.execute(f"SELECT count(*) FROM pairs WHERE {plain}").fetchone()
    assert differing == []
    assert close is not None and close[0] > 1_500, "the sample should hold many close pairs"


def test_the_guard_over_names_with_their_spaces_removed_gives_the_plain_verdicts(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    plain = "damerau_levenshtein(replace(x_l, ' ', ''), replace(x_r, ' ', '')) <= 2"
    guarded = guard_edit_distances(f"({plain})")
    assert "strlen(replace(x_l, ' ', ''))" in guarded, "the condition should have been rewritten"
    differing = connection.execute(f"SELECT x_l, x_r FROM pairs WHERE ({guarded}) IS DISTINCT FROM ({plain})")
    assert differing.fetchall() == []


@pytest.mark.parametrize(
    "sql",
    [
        "1 + damerau_levenshtein(x_l, x_r) <= 1",
        "(damerau_levenshtein(x_l, x_r) <= 1 + 1)",
        "(damerau_levenshtein(x_l, x_r) <= length(x_l))",
        "(damerau_levenshtein(lower(x_l), x_r) <= 1)",
    ],
)
def test_conditions_of_another_shape_are_left_as_written(sql: str) -> None:
    assert guard_edit_distances(sql) == sql


def test_every_edit_distance_of_the_model_is_guarded() -> None:
    # A level written so that the rewrite misses it still scores right, only slower: this says so.
    scorer = compile_scorer(settings_creator("link_only", 1_000).get_settings("duckdb").as_dict())
    statements = " ".join(scorer.case_statements.values())
    assert statements.count("damerau_levenshtein(") > 10
    assert statements.count("strlen(") == 2 * statements.count("damerau_levenshtein(")


def test_lists_share_an_element_as_the_intersection_says() -> None:
    rng = random.Random(20261209)
    letters = ("A", "B", "C", "D", None)

    def some_list() -> list[str | None] | None:
        if rng.random() < 0.1:
            return None
        return [rng.choice(letters) for _ in range(rng.randint(0, 4))]

    lefts = [some_list() for _ in range(5_000)]
    rights = [some_list() for _ in range(5_000)]
    connection = duckdb.connect()
    connection.register("lists", pa.table({"x_l": lefts, "x_r": rights}, schema=pa.schema([
        ("x_l", pa.list_(pa.string())), ("x_r", pa.list_(pa.string()))])))  # fmt: skip
    plain = "array_length(list_intersect(x_l, x_r)) >= 1"
    rewritten = share_an_element(f"({plain})")
    assert "list_has_any" in rewritten
    differing = connection.execute(
        f"SELECT x_l, x_r FROM lists WHERE ({rewritten}) IS DISTINCT FROM ({plain})"
    ).fetchall()
    shared = connection.execute(f"SELECT count(*) FROM lists WHERE {plain}").fetchone()
    assert differing == []
    assert shared is not None and 1_000 < shared[0] < 4_000


def test_every_list_intersection_of_the_model_is_rewritten() -> None:
    scorer = compile_scorer(settings_creator("link_only", 1_000).get_settings("duckdb").as_dict())
    statements = " ".join(scorer.case_statements.values())
    assert statements.count("list_has_any(") == statements.count("list_intersect(") >= 2
