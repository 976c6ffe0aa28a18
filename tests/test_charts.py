"""Inline SVG charts: escaped labels, bounded rows, a waterfall that ends at its sum."""

from __future__ import annotations

import re

from taxmatch.charts import Bar, Step, bar_chart, column_chart, top_rows, waterfall_chart


def test_labels_are_escaped_and_nothing_runs() -> None:
    hostile = '<script>alert("x")</script>&'
    for svg in (
        bar_chart([Bar(hostile, 3)], hostile),
        column_chart([(hostile, {"DISCLOSED": 2})], ("DISCLOSED",), hostile),
        waterfall_chart([Step(hostile, 1.5)], hostile),
    ):
        assert "<script" not in svg and "&lt;script&gt;" in svg
        assert "style=" not in svg and "href" not in svg


def test_bars_are_proportional_to_their_counts() -> None:
    svg = bar_chart([Bar("a", 10), Bar("b", 5), Bar("c", 0)], "t", label_width=100)
    widths = [float(width) for width in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert widths[0] == 2 * widths[1] > 0 and widths[2] == 0


def test_top_rows_fold_the_rest_into_one() -> None:
    counts = {f"s{n}": n for n in range(1, 21)}
    rows = top_rows(counts, 3, "other")
    assert rows[:3] == [("s20", 20), ("s19", 19), ("s18", 18)]
    assert rows[3] == ("other (17)", sum(range(1, 18)))
    assert top_rows({"a": 1}, 3) == [("a", 1)]


def test_the_waterfall_ends_at_the_sum_of_its_steps() -> None:
    steps = [Step("prior", -8.0), Step("name", 6.0), Step("address", 8.0), Step("dob", -2.0)]
    svg = waterfall_chart(steps, "t")
    labels = re.findall(r">([+-][\d.]+)</text>", svg)
    assert labels == ["-8.00", "+6.00", "+8.00", "-2.00", "+4.00"]  # the last bar: the match weight, 0 to 4
    classes = re.findall(r'<rect class="(\w+)"', svg)
    assert classes == ["negative", "positive", "positive", "negative", "total"]


def test_columns_stack_their_series() -> None:
    svg = column_chart([("0.00", {"A": 3, "B": 1}), ("0.05", {"A": 0, "B": 4})], ("A", "B"), "t")
    heights = {title: float(h) for h, title in re.findall(r'height="([\d.]+)"><title>([^<]+)</title>', svg)}
    assert heights["0.00: 3 A"] == 3 * heights["0.00: 1 B"] and heights["0.05: 4 B"] == 4 * heights["0.00: 1 B"]
    assert "0.05: 0 A" not in heights  # an empty part is not drawn
