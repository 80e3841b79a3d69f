"""Geometry for the server-drawn SVG charts of Insights (templates/portal/_chart_*.html draw
it). Only numbers and labels here; colours are CSS classes (static/css/insights.css), since
the Content-Security-Policy allows no inline style. Each chart is shown with its table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    css: str = "chart-label"


@dataclass
class Chart:
    width: int
    height: int
    title: str
    description: str
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    lines: list[tuple[float, float, float, float]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css, label)
    # "chart-bars" fit a phone as they are; "chart-columns" keep a readable width and scroll.
    css: str = "chart-columns"


def nice_ceiling(value: int) -> int:
    """The axis maximum: 1, 2 or 5 times a power of ten, at least `value` and at least 1."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _r(value: float) -> float:
    return round(value, 1)


def horizontal_bars(
    *, title: str, description: str, rows: list[tuple[str, int]], css: str = "bar-primary"
) -> Chart:
    """One bar per row, its label on the left and its count at the end of the bar."""
    label_width, bar_height, gap, right = 112, 22, 10, 40
    width = 400
    height = len(rows) * (bar_height + gap) + gap
    chart = Chart(
        width=width, height=height, title=title, description=description, css="chart-bars"
    )
    top = max((n for _, n in rows), default=0)
    scale = (width - label_width - right) / nice_ceiling(top)
    for i, (label, n) in enumerate(rows):
        y = gap + i * (bar_height + gap)
        bar = n * scale
        chart.rects.append(Rect(x=label_width, y=y, width=_r(bar), height=bar_height, css=css))
        middle = y + bar_height / 2 + 5
        chart.labels.append(Label(x=label_width - 8, y=middle, text=label, anchor="end"))
        chart.labels.append(
            Label(x=_r(label_width + bar + 6), y=middle, text=str(n), anchor="start")
        )
    return chart


def stacked_columns(
    *,
    title: str,
    description: str,
    columns: list[tuple[str, list[int]]],
    series: list[tuple[str, str]],
    label_every: int = 1,
) -> Chart:
    """A column per (label, values), its values stacked in the order of `series` ((css,
    name) pairs); a labelled y axis with three ticks; every `label_every`-th column named."""
    width, height = 720, 260
    left, right, top, bottom = 44, 8, 12, 36
    plot_height = height - top - bottom
    chart = Chart(width=width, height=height, title=title, description=description)
    chart.legend = list(series)
    peak = nice_ceiling(max((sum(values) for _, values in columns), default=0))
    for tick in (0, peak / 2, peak):
        y = _r(top + plot_height - tick / peak * plot_height)
        chart.lines.append((left, y, width - right, y))
        text = f"{tick:g}"
        chart.labels.append(Label(x=left - 6, y=y + 4, text=text, anchor="end"))
    slot = (width - left - right) / max(len(columns), 1)
    bar_width = max(slot * 0.7, 1)
    for i, (label, values) in enumerate(columns):
        x = _r(left + i * slot + (slot - bar_width) / 2)
        base = top + plot_height
        for (css, _name), value in zip(series, values, strict=True):
            if not value:
                continue
            h = value / peak * plot_height
            base -= h
            chart.rects.append(Rect(x=x, y=_r(base), width=_r(bar_width), height=_r(h), css=css))
        if i % label_every == 0:
            chart.labels.append(Label(x=_r(x + bar_width / 2), y=height - bottom + 18, text=label))
    return chart
