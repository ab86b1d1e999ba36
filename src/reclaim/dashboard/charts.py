"""Charts drawn on the server as inline SVG: no JavaScript, nothing to load, prints well.

Each function returns ``Markup`` ready for a template. Labels are escaped here, since they come
from the data (team names, rule ids).
"""

from __future__ import annotations

__all__ = ["Series", "TimelineBar", "line_chart", "money", "sparkline", "timeline"]

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from markupsafe import Markup, escape

# Every string put into the SVG below is either a number we formatted or passed through
# escape(), hence the S704 waivers on the Markup() calls.


def money(value: float, currency: str | None = None) -> str:
    """A short money figure for people: 1,234 · 12.3k · 4.56M (with a currency code)."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1e9:
        text = f"{value / 1e9:.2f}B"
    elif value >= 1e6:
        text = f"{value / 1e6:.2f}M"
    elif value >= 1e4:
        text = f"{value / 1e3:.1f}k"
    else:
        text = f"{value:,.0f}"
    return f"{sign}{text}" + (f" {currency}" if currency else "")


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # a class of dashboard.css that sets the stroke/fill colour
    values: Sequence[float]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * exponent:
            return float(step * exponent)
    return float(10 * exponent)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 1160,
    height: int = 300,
    title: str = "",
) -> Markup:
    """Lines over shared x labels, with a y axis of round figures and a legend."""
    left, right, top, bottom = 64, 40, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_max(max((max(s.values, default=0.0) for s in series), default=0.0))
    n = len(labels)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">'
    ]
    for k in range(5):
        value = peak * k / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="axis" x="{left - 8}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{escape(money(value))}</text>'
        )
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        parts.append(
            f'<text class="axis" x="{x(i):.1f}" y="{height - bottom + 18}" '
            f'text-anchor="middle">{escape(labels[i])}</text>'
        )
    for s in series:
        if not s.values:
            continue
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(s.values))
        area = f"{x(0):.1f},{y(0):.1f} {points} {x(len(s.values) - 1):.1f},{y(0):.1f}"
        parts.append(f'<polygon class="area {s.css}" points="{area}"/>')
        parts.append(f'<polyline class="line {s.css}" points="{points}"/>')
        last = len(s.values) - 1
        parts.append(
            f'<circle class="dot {s.css}" cx="{x(last):.1f}" cy="{y(s.values[last]):.1f}" r="3.5">'
            f"<title>{escape(s.name)}: {escape(money(s.values[last]))}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704


def sparkline(values: Sequence[float], *, width: int = 220, height: int = 44) -> Markup:
    """A small line of a recommendation's savings across the runs that saw it."""
    if not values:
        return Markup("")
    peak = max(values) or 1.0
    n = len(values)
    pad = 4

    def x(i: int) -> float:
        return pad + ((width - 2 * pad) * i / (n - 1) if n > 1 else (width - 2 * pad) / 2)

    def y(v: float) -> float:
        return pad + (height - 2 * pad) * (1 - v / peak)

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    return Markup(  # noqa: S704
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="savings per run"><polyline class="line found" '
        f'points="{points}"/><circle class="dot found" cx="{x(n - 1):.1f}" '
        f'cy="{y(values[-1]):.1f}" r="3"/></svg>'
    )


@dataclass(frozen=True)
class TimelineBar:
    label: str
    status: str
    start: datetime | None
    end: datetime | None
    note: str = ""


def timeline(bars: Sequence[TimelineBar], *, now: datetime, width: int = 1160) -> Markup:
    """A Gantt chart of a run's steps: one bar per step from its start to its end (or now)."""
    starts = [bar.start for bar in bars if bar.start is not None]
    if not starts:
        return Markup('<p class="muted">No step has started yet.</p>')
    begin = min(starts)
    finish = max([bar.end or now for bar in bars if bar.start is not None])
    span = max((finish - begin).total_seconds(), 0.001)
    label_w, row_h, top = 170, 28, 24
    plot_w = width - label_w - 90
    height = top + row_h * len(bars) + 8
    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="step timeline">'
    ]
    for k in range(5):
        at = label_w + plot_w * k / 4
        parts.append(
            f'<line class="grid" x1="{at:.1f}" x2="{at:.1f}" y1="{top - 6}" y2="{height - 4}"/>'
            f'<text class="axis" x="{at:.1f}" y="{top - 10}" text-anchor="middle">'
            f"{escape(_duration(span * k / 4))}</text>"
        )
    for i, bar in enumerate(bars):
        y = top + i * row_h
        parts.append(
            f'<text class="label" x="{label_w - 10}" y="{y + 18}" text-anchor="end">'
            f"{escape(_clip(bar.label, 22))}</text>"
        )
        if bar.start is None:
            parts.append(f'<text class="axis" x="{label_w + 4}" y="{y + 18}">not started</text>')
            continue
        x0 = label_w + plot_w * (bar.start - begin).total_seconds() / span
        end = bar.end or now
        x1 = label_w + plot_w * (end - begin).total_seconds() / span
        w = max(x1 - x0, 3.0)
        took = _duration((end - bar.start).total_seconds())
        text = took + bar.note
        # Right of the bar when it fits in the chart, else left of it, else inside its end:
        # a bar that ends at the right edge must not push its note out of the picture.
        text_w = len(text) * _AXIS_CHAR_W
        if x0 + w + 6 + text_w <= width:
            place = f'class="axis" x="{x0 + w + 6:.1f}"'
        elif x0 - 6 - text_w >= label_w:
            place = f'class="axis" x="{x0 - 6:.1f}" text-anchor="end"'
        else:
            place = f'class="axis inbar" x="{x0 + w - 6:.1f}" text-anchor="end"'
        parts.append(
            f'<rect class="bar st-{escape(bar.status)}" x="{x0:.1f}" y="{y + 5}" width="{w:.1f}" '
            f'height="{row_h - 10}" rx="4"><title>{escape(bar.label)}: {escape(bar.status)}, '
            f"{escape(text)}</title></rect>"
            f'<text {place} y="{y + 18}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704


# The width of one character of the 11 px axis font, generously: a note placed by it fits.
_AXIS_CHAR_W = 6.5


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _duration(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def weekly(
    by_day: dict[str, tuple[float, float, float, float]],
) -> tuple[list[str], list[list[float]]]:
    """Cumulative savings per stage at the end of each ISO week (Monday labels)."""
    if not by_day:
        return [], [[], [], [], []]
    days = sorted(by_day)
    first = date.fromisoformat(days[0])
    last = date.fromisoformat(days[-1])
    monday = first - timedelta(days=first.weekday())
    weeks: list[date] = []
    while monday <= last:
        weeks.append(monday)
        monday += timedelta(days=7)
    totals = [[0.0] * len(weeks) for _ in range(4)]
    for day, values in by_day.items():
        index = (date.fromisoformat(day) - weeks[0]).days // 7
        for stage in range(4):
            totals[stage][index] += values[stage]
    for stage in range(4):
        running = 0.0
        for i, value in enumerate(totals[stage]):
            running += value
            totals[stage][i] = running
    return [w.strftime("%d %b") for w in weeks], totals
