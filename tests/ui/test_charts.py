"""The server-drawn SVG charts and the formatting the pages rely on."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from perpetuo.schema.errors import GatewayError
from perpetuo.ui.charts import Series, axis_usd, bar_chart, line_chart, nice_max, share_bar
from perpetuo.ui.formatting import count, ms, usd
from perpetuo.ui.timerange import parse_range

HOURS = [dt.datetime(2025, 5, 1, h, tzinfo=dt.UTC) for h in range(6)]


def test_axis_tops_are_round_and_counts_get_whole_steps():
    assert nice_max(0) == 1 and nice_max(0, whole=True) == 4
    assert nice_max(3, whole=True) == 4  # steps of 1, not 0.75
    assert nice_max(9, whole=True) == 20  # steps of 5, never 2.5 requests
    assert nice_max(0.7) == pytest.approx(0.8)
    assert nice_max(120) == 200


def test_a_line_chart_draws_each_series_and_skips_gaps():
    svg = line_chart(
        "Latency", HOURS, [Series("p50", [1, 2, None, 4, 5, 6]), Series("x", [None] * 6)]
    )
    points = re.search(r'<polyline class="line s0" points="([^"]+)"', svg)[1].split()
    assert len(points) == 5
    assert 'class="line s1"' not in svg  # a series with no data draws nothing
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg
    assert "style=" not in svg  # colours come from the stylesheet (CSP forbids inline styles)


def test_a_bar_chart_scales_bars_to_the_axis_and_says_when_empty():
    svg = bar_chart("Requests", HOURS, [0, 1, 2, 0, 4, 0], whole=True)
    heights = [float(h) for h in re.findall(r'<rect class="bar s0"[^>]* height="([\d.]+)"', svg)]
    assert len(heights) == 3 and heights[1] == pytest.approx(2 * heights[0])
    assert heights[2] == pytest.approx(164)  # 4 of 4: the whole plot height
    assert "No data" in bar_chart("Requests", HOURS, [0] * 6)
    assert "<title>2025-05-01 04:00: 4</title>" in svg


def _x_ticks(svg: str) -> list[tuple[float, str]]:
    found = re.findall(r'<text class="axis-label" x="([\d.]+)" y="192" [^>]*>([^<]+)</text>', svg)
    return [(float(x), text) for x, text in found]


def _even(values: list[float]) -> bool:
    gaps = [b - a for a, b in itertools.pairwise(values)]
    return len(gaps) >= 2 and max(gaps) - min(gaps) < 0.2


@pytest.mark.parametrize(
    ("start", "count", "step", "last"),
    [
        # 7 days by the hour, ending mid-afternoon: every midnight, the last day included.
        (dt.datetime(2025, 11, 26, 14, tzinfo=dt.UTC), 168, dt.timedelta(hours=1), "Dec 03"),
        # 30 days by the day.
        (dt.datetime(2025, 11, 4, tzinfo=dt.UTC), 30, dt.timedelta(days=1), "Dec 03"),
        # 24 hours: whole hours apart, the latest hour labelled.
        (dt.datetime(2025, 12, 2, 14, tzinfo=dt.UTC), 24, dt.timedelta(hours=1), "13:00"),
    ],
)
def test_time_axis_ticks_are_even_and_label_the_latest_bucket(start, count, step, last):
    labels = [start + step * i for i in range(count)]
    svg = bar_chart("Requests", labels, [0] * (count - 1) + [3], whole=True)
    ticks = _x_ticks(svg)
    assert 4 <= len(ticks) <= 7 and ticks[-1][1] == last
    assert _even([x for x, _ in ticks])  # evenly spaced on the chart...
    fmt = "%H:%M" if ":" in last else "%b %d"
    moments = [dt.datetime.strptime(f"2025 {text}", f"%Y {fmt}") for _, text in ticks]
    for i in range(1, len(moments)):  # hours past midnight belong to the next day
        while moments[i] < moments[i - 1]:
            moments[i] += dt.timedelta(days=1)
    assert _even([m.timestamp() for m in moments])  # ...and in time


def test_dollar_ticks_have_enough_decimals_to_differ():
    ticks = {axis_usd([0.000012])(v) for v in (0, 0.000005, 0.00001, 0.000015, 0.00002)}
    assert len(ticks) == 5
    assert axis_usd([120])(60) == "$60.00"


def test_share_bar_and_formatting():
    assert 'width="60.0"' in share_bar(0.5) and 'width="120.0"' in share_bar(3)
    assert count(9999) == "9,999" and count(10_000) == "10k" and count(2_500_000) == "2.5M"
    assert usd(0.000012) == "$0.000012" and usd(12.5) == "$12.50" and usd(None) == "—"
    assert ms(2.5) == "2.5 ms" and ms(250) == "250 ms" and ms(2500) == "2.50 s"


def test_time_ranges():
    assert parse_range("7d", None, None).granularity == "hour"
    assert parse_range("30d", None, None).granularity == "day"
    assert parse_range("bogus", None, None, default="24h").key == "24h"
    custom = parse_range("custom", "2025-01-01", "2025-01-03")
    assert (custom.since.day, custom.until.day) == (1, 4)  # whole days, the last included
    assert custom.query == {"range": "custom", "since": "2025-01-01", "until": "2025-01-04"}
    with pytest.raises(GatewayError):
        parse_range("custom", "2025-01-05", "2025-01-01")
    with pytest.raises(GatewayError):
        parse_range("custom", "yesterday", None)
