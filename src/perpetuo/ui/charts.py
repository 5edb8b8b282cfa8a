"""Small SVG line and bar charts, drawn on the server: nothing to download, nothing to run.

Colours come from CSS classes (`s0`..`s3`) and sizes from the viewBox, so a chart scales
with its container and obeys the page's Content-Security-Policy (no inline styles).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 480, 200
RIGHT, TOP, BOTTOM = 10, 10, 26


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None: no data at that point


def nice_max(value: float, *, whole: bool = False) -> float:
    """The top of an axis of four equal steps, each 1, 2, 2.5 or 5 times a power of ten
    (whole numbers only, for counts), at or above `value`."""
    if value <= 0:
        return 4.0 if whole else 1.0
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw))
    step = 10 * power
    for multiple in (1, 2, 2.5, 5):
        if (not whole or multiple != 2.5) and raw <= multiple * power:
            step = multiple * power
            break
    return 4 * (max(1.0, step) if whole else step)


MAX_TICKS = 7
HOUR_STEPS = (1, 2, 3, 4, 6, 12)
DAY_STEPS = (1, 2, 3, 5, 7, 14, 30, 61, 91)


def _x_labels(labels: Sequence[dt.datetime], hourly: bool) -> list[tuple[int, str]]:
    """Ticks a whole number of hours (within a day) or days apart, counted back from the last
    bucket, so they are evenly spaced and the latest hour or day, where new data lands, is
    always labelled. Over several days the ticks sit on midnights."""
    if not labels:
        return []
    if hourly and labels[-1] - labels[0] <= dt.timedelta(days=1):
        points, steps, fmt = list(range(len(labels))), HOUR_STEPS, "%H:%M"
    else:
        points = [i for i, label in enumerate(labels) if label.hour == 0] or [len(labels) - 1]
        steps, fmt = DAY_STEPS, "%b %d"
    step = next((s for s in steps if math.ceil(len(points) / s) <= MAX_TICKS), steps[-1])
    chosen = points[::-1][::step][::-1]
    return [(i, labels[i].strftime(fmt)) for i in chosen]


@dataclass(frozen=True)
class Frame:
    """The plot area: the left margin grows to fit the widest tick label."""

    left: float
    top: float  # the value at the top of the axis

    @property
    def width(self) -> float:
        return WIDTH - self.left - RIGHT

    @property
    def height(self) -> float:
        return HEIGHT - TOP - BOTTOM

    def x(self, index: int, count: int) -> float:
        return self.left + self.width * index / max(1, count - 1)

    def y(self, value: float) -> float:
        return TOP + self.height * (1 - value / self.top)


def _frame(
    title: str,
    top: float,
    labels: Sequence[dt.datetime],
    hourly: bool,
    fmt: Callable[[float], str],
) -> tuple[Frame, list[str]]:
    ticks = [(top * (4 - i) / 4, fmt(top * (4 - i) / 4)) for i in range(5)]
    frame = Frame(left=max(36.0, 7.4 * max(len(text) for _, text in ticks) + 12), top=top)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for value, text in ticks:
        y = frame.y(value)
        parts.append(
            f'<line class="grid-line" x1="{frame.left:.1f}" x2="{WIDTH - RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis-label" x="{frame.left - 6:.1f}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(text)}</text>'
        )
    for index, text in _x_labels(labels, hourly):
        parts.append(
            f'<text class="axis-label" x="{frame.x(index, len(labels)):.1f}" '
            f'y="{HEIGHT - 8}" text-anchor="middle">{escape(text)}</text>'
        )
    return frame, parts


def line_chart(
    title: str,
    labels: Sequence[dt.datetime],
    series: Sequence[Series],
    *,
    hourly: bool = True,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    whole: bool = False,
) -> str:
    values = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(values, default=0.0), whole=whole)
    frame, parts = _frame(title, top, labels, hourly, fmt)
    if not values:
        parts.append(_no_data(frame))
    for number, line in enumerate(series):
        points = [
            (frame.x(i, len(labels)), frame.y(v))
            for i, v in enumerate(line.values)
            if v is not None
        ]
        if len(points) == 1:
            x, y = points[0]
            parts.append(f'<circle class="s{number}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>')
        elif points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline class="line s{number}" points="{path}"/>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    labels: Sequence[dt.datetime],
    values: Sequence[float],
    *,
    hourly: bool = True,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    series: int = 0,
    whole: bool = False,
) -> str:
    top = nice_max(max(values, default=0.0), whole=whole)
    frame, parts = _frame(title, top, labels, hourly, fmt)
    if not any(values):
        parts.append(_no_data(frame))
    width = max(1.0, frame.width / max(1, len(values)) * 0.7)
    for i, value in enumerate(values):
        if value <= 0:
            continue
        top = frame.y(value)
        centre = frame.x(i, len(values)) if len(values) > 1 else frame.left + frame.width / 2
        x = min(max(frame.left, centre - width / 2), WIDTH - RIGHT - width)
        parts.append(
            f'<rect class="bar s{series}" x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{TOP + frame.height - top:.1f}"><title>'
            f"{escape(labels[i].strftime('%Y-%m-%d %H:%M'))}: {escape(fmt(value))}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def share_bar(fraction: float, width: int = 120) -> str:
    """A thin horizontal bar for a table cell (a share of the total)."""
    filled = max(0.0, min(1.0, fraction)) * width
    return (
        f'<svg class="share" viewBox="0 0 {width} 6" width="{width}" height="6" '
        f'aria-hidden="true"><rect x="0" y="0" width="{filled:.1f}" height="6" rx="2"/></svg>'
    )


def axis_usd(values: Sequence[float]) -> Callable[[float], str]:
    """Dollar tick labels with enough decimals to tell the ticks of this chart apart."""
    top = nice_max(max(values, default=0.0))
    digits = 2 if top >= 4 else min(6, 2 + max(0, -math.floor(math.log10(top / 4))))
    return lambda value: f"${value:,.{digits}f}"


def _no_data(frame: Frame) -> str:
    x, y = frame.left + frame.width / 2, TOP + frame.height / 2
    return f'<text class="empty-label" x="{x:.0f}" y="{y:.0f}" text-anchor="middle">No data</text>'
