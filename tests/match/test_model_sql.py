"""SQL of the model's levels: rewrites for speed keep the verdicts."""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa

from taxmatch.match.levels import one_edit_apart_sql


def _one_edit(text: str, rng: random.Random) -> str:
    position = rng.randrange(len(text))
    kind = rng.choice(("substitute", "swap", "insert", "drop"))
    if kind == "substitute":
        return text[:position] + rng.choice("0123456789-") + text[position + 1 :]
    if kind == "swap" and position + 1 < len(text):
        return text[:position] + text[position + 1] + text[position] + text[position + 2 :]
    if kind == "insert":
        return text[:position] + rng.choice("0123456789") + text[position:]
    return text[:position] + text[position + 1 :]


def test_the_guarded_edit_distance_gives_the_plain_one_verdicts() -> None:
    rng = random.Random(20261125)
    pairs: list[tuple[str, str]] = []
    for _ in range(20_000):
        length = rng.randint(1, 12)
        left = "".join(rng.choice("0123456789-") for _ in range(length))
        right = _one_edit(left, rng) if rng.random() < 0.7 else "".join(rng.choice("0123") for _ in range(length))
        pairs.append((left, right))
    pairs += [("1980-03-26", "1980-03-62"), ("1980-03-26", "1908-03-26"), ("123456789", "123456798")]
    connection = duckdb.connect()
    connection.register("pairs", pa.table({"x_l": [left for left, _ in pairs], "x_r": [right for _, right in pairs]}))
    differing = connection.execute(
        f"SELECT x_l, x_r FROM pairs WHERE ({one_edit_apart_sql('x')}) IS DISTINCT FROM "
        "(damerau_levenshtein(x_l, x_r) <= 1)"
    ).fetchall()
    one_edit = connection.execute("SELECT count(*) FROM pairs WHERE damerau_levenshtein(x_l, x_r) <= 1").fetchone()
    assert differing == []
    assert one_edit is not None and one_edit[0] > 10_000, "the sample should hold many one-edit pairs"
