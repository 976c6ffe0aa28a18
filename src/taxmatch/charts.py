"""Charts as inline SVG, made on the server: no script, no style attribute, nothing fetched.

One drawing of each kind for the dashboard (`taxmatch.api.web`) and the accounting report
(`taxmatch.ledger.report`): horizontal bars for counts, columns for a histogram, and a waterfall
for an explanation's weights. Colours come from CSS classes (the dashboard's style sheet, the
report's inline style), so a strict Content-Security-Policy (no inline style) still holds.

Every label is escaped here: agencies, statutes and request ids are requesters' text. A chart's
size is bounded by the rows it is given, never by the records behind them; callers that can
have many rows (statutes as cited) keep the largest and fold the rest into one (`top_rows`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Bar", "Step", "bar_chart", "column_chart", "top_rows", "waterfall_chart"]

WIDTH = 600
CARD_WIDTH = 400
ROW_HEIGHT = 24
BAR_HEIGHT = 16
COUNT_ROOM = 70  # to the right of the longest bar, for its count


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    css_class: str = "neutral"


@dataclass(frozen=True)
class Step:
    """One term of a waterfall: its label and its (signed) weight."""

    label: str
    weight: float


def _text(x: float, y: float, content: str, anchor: str = "") -> str:
    anchor_attribute = f' text-anchor="{anchor}"' if anchor else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{anchor_attribute}>{html.escape(content)}</text>'


def _svg(css_class: str, height: float, title: str, body: Sequence[str], width: int = WIDTH) -> str:
    return (
        f'<svg class="chart {css_class}" role="img" viewBox="0 0 {width} {height:.0f}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet"><title>{html.escape(title)}</title>' + "".join(body) + "</svg>"
    )


def top_rows(counts: Mapping[str, int], keep: int, other_label: str = "other") -> list[tuple[str, int]]:
    """The `keep` largest counts (ties by name), and the rest summed into one row named after how many."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if len(ranked) <= keep:
        return ranked
    rest = ranked[keep:]
    return [*ranked[:keep], (f"{other_label} ({len(rest):,})", sum(count for _, count in rest))]


def bar_chart(bars: Sequence[Bar], title: str, label_width: int = 150, width: int = CARD_WIDTH) -> str:
    """Horizontal bars, one a row, each labelled and with its count at its end.

    Drawn CARD_WIDTH wide by default, as the columns are: each sits in a card a third of a page
    wide, where a wider drawing would shrink its text below reading size."""
    top = max((bar.count for bar in bars), default=0)
    room = width - label_width - COUNT_ROOM
    body: list[str] = []
    for position, bar in enumerate(bars):
        y = ROW_HEIGHT * position
        length = room * bar.count / top if top else 0.0
        body.append(_text(0, y + 16, bar.label))
        body.append(
            f'<rect class="{html.escape(bar.css_class)}" x="{label_width}" y="{y + 4}" '
            f'height="{BAR_HEIGHT}" width="{length:.1f}"></rect>'
        )
        body.append(_text(label_width + length + 6, y + 16, f"{bar.count:,}"))
    return _svg("bars", ROW_HEIGHT * len(bars) + 4, title, body, width)


def column_chart(
    columns: Sequence[tuple[str, Mapping[str, int]]], series: Sequence[str], title: str, label_every: int = 1
) -> str:
    """Vertical columns (a histogram), each a stack of the `series` (CSS classes) in that order.

    `columns` are (label, count per series); every `label_every`-th label is written under its column.
    """
    plot_top, plot_height, left = 18.0, 150.0, 48.0
    height = plot_top + plot_height + 22
    totals = [sum(counts.get(name, 0) for name in series) for _, counts in columns]
    top = max(totals, default=0)
    slot = (CARD_WIDTH - left) / max(1, len(columns))
    body = [
        f'<line class="axis" x1="{left}" y1="{plot_top + plot_height}" x2="{CARD_WIDTH}" '
        f'y2="{plot_top + plot_height}"></line>',
        _text(left - 6, plot_top + 4, f"{top:,}", "end"),
        _text(left - 6, plot_top + plot_height, "0", "end"),
    ]
    for position, (label, counts) in enumerate(columns):
        x = left + slot * position + 1
        base = plot_top + plot_height
        for name in series:
            count = counts.get(name, 0)
            if not count or not top:
                continue
            tall = plot_height * count / top
            base -= tall
            body.append(
                f'<rect class="{html.escape(name)}" x="{x:.1f}" y="{base:.1f}" width="{max(1.0, slot - 2):.1f}" '
                f'height="{tall:.1f}"><title>{html.escape(label)}: {count:,} {html.escape(name)}</title></rect>'
            )
        if position % label_every == 0:
            body.append(_text(x + (slot - 2) / 2, plot_top + plot_height + 16, label, "middle"))
    return _svg("columns", height, title, body, CARD_WIDTH)


def waterfall_chart(steps: Sequence[Step], title: str, label_width: int = 200) -> str:
    """Each step a bar from the running total before it to the one after (like Splink's waterfall).

    Positive weights are drawn in the `positive` class, negative in `negative`, and a last bar in
    `total` goes from 0 to the sum. The horizontal scale spans every running total and 0.
    """
    running = [0.0]
    for step in steps:
        running.append(running[-1] + step.weight)
    low, high = min(0.0, *running), max(0.0, *running)
    span = (high - low) or 1.0
    room = WIDTH - label_width - COUNT_ROOM

    def x_of(value: float) -> float:
        return label_width + room * (value - low) / span

    body: list[str] = [
        f'<line class="axis" x1="{x_of(0):.1f}" y1="0" x2="{x_of(0):.1f}" '
        f'y2="{ROW_HEIGHT * (len(steps) + 1) + 4}"></line>'
    ]
    rows = [(step.label, before, after) for step, before, after in zip(steps, running, running[1:], strict=False)]
    rows.append(("match weight", 0.0, running[-1]))
    for position, (label, before, after) in enumerate(rows):
        y = ROW_HEIGHT * position
        start, end = sorted((x_of(before), x_of(after)))
        css = "total" if position == len(steps) else ("negative" if after < before else "positive")
        body.append(_text(0, y + 16, label))
        body.append(
            f'<rect class="{css}" x="{start:.1f}" y="{y + 4}" height="{BAR_HEIGHT}" '
            f'width="{max(1.0, end - start):.1f}"></rect>'
        )
        body.append(_text(end + 6, y + 16, f"{after - before:+.2f}"))
    return _svg("waterfall", ROW_HEIGHT * len(rows) + 4, title, body)
