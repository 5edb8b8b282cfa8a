"""Latency percentiles read from the usage rollups' histograms, as the usage page and API show
them: close to the real ones from sub-millisecond answers to minutes-long streams, and never
above the slowest request of the range."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest

from perpetuo.control import analytics
from perpetuo.control.actor import CLI_ACTOR
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.rollup import percentile
from perpetuo.metering.writer import write_batch
from perpetuo.store.schema import LATENCY_BUCKETS_MS, LATENCY_COLUMNS
from tests.support.plane import make_plane

HOUR = 3600.0
DAY = 24 * HOUR


@pytest.fixture
async def plane(store_url):
    plane = await make_plane(store_url)
    yield plane
    await plane.db.dispose()


def records(latencies: list[float], start: float) -> list[RequestRecord]:
    return [
        RequestRecord(
            id=f"req_{start}_{i}",
            workspace_id="ws_default",
            created_at=start + i,
            endpoint="chat",
            status=200,
            latency_ms=latency,
        )
        for i, latency in enumerate(latencies)
    ]


def exact(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def usage(plane, since: float, until: float) -> list[dict]:
    return await analytics.usage_series(
        plane,
        CLI_ACTOR,
        "ws_default",
        since=dt.datetime.fromtimestamp(since, dt.UTC),
        until=dt.datetime.fromtimestamp(until, dt.UTC),
        granularity="day",
    )


async def test_sub_millisecond_requests_get_sub_millisecond_percentiles(plane):
    # Fast local answers: most well under a millisecond, a few up to 3.3 ms (mean 0.9 ms).
    latencies = [0.2 + 0.05 * i for i in range(12)] * 6 + [1.5, 2.2, 2.8, 3.1, 3.3] * 4
    assert 0.8 <= sum(latencies) / len(latencies) <= 1.0
    start = time.time() // HOUR * HOUR
    await write_batch(plane.db, records(latencies, start))
    [row] = await usage(plane, start - HOUR, start + HOUR)
    p50, p95 = row["latency_p50_ms"], row["latency_p95_ms"]
    assert row["requests"] == len(latencies)
    assert exact(latencies, 0.50) / 1.5 <= p50 <= exact(latencies, 0.50) * 1.5
    assert exact(latencies, 0.95) / 1.5 <= p95 <= max(latencies)
    assert p50 < row["latency_avg_ms"] < 1.0  # a skewed range: the median below the mean


@pytest.mark.parametrize(
    "latencies",
    [
        [601.0],  # alone in the (500, 750] bucket
        [12.0] * 20 + [16.0],
        [700_000.0, 650_000.0],  # past the last bound (10 minutes)
    ],
)
async def test_no_percentile_above_the_slowest_request(plane, latencies):
    start = time.time() // HOUR * HOUR
    await write_batch(plane.db, records(latencies, start))
    [row] = await usage(plane, start - HOUR, start + HOUR)
    for name in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
        assert row[name] <= max(latencies), name
    assert row["latency_p99_ms"] >= 0.8 * max(latencies)  # and not far below it


async def test_the_slowest_request_spans_hours_and_dimensions(plane):
    """Rows of several hours merge by max (not by sum), in the database and in analytics."""
    # Yesterday 10:00 UTC: the three hours fall inside one day, whatever the time of the run.
    start = time.time() // DAY * DAY - DAY + 10 * HOUR
    await write_batch(plane.db, records([40.0, 41.0], start))
    await write_batch(plane.db, records([44.0], start + HOUR))
    await write_batch(plane.db, records([42.0], start + 10))  # the same hour, another batch
    [row] = await usage(plane, start - HOUR, start + 3 * HOUR)
    assert row["requests"] == 4
    assert 41.0 <= row["latency_p99_ms"] <= 44.0


def test_buckets_reach_from_a_tenth_of_a_millisecond_to_minutes():
    assert LATENCY_BUCKETS_MS[0] == 0.1 and LATENCY_BUCKETS_MS[-1] >= 600_000
    assert list(LATENCY_BUCKETS_MS) == sorted(set(LATENCY_BUCKETS_MS))
    steps = [b / a for a, b in itertools.pairwise(LATENCY_BUCKETS_MS)]
    assert max(steps) <= 2.0  # no bucket wider than a factor of two
    assert len(LATENCY_COLUMNS) == len(LATENCY_BUCKETS_MS) + 1


def test_percentile_with_and_without_a_known_maximum():
    histogram = [0] * len(LATENCY_COLUMNS)
    histogram[LATENCY_BUCKETS_MS.index(750)] = 10  # ten requests in (500, 750]
    assert 500 < percentile(histogram, 0.5) <= 750
    assert 500 < percentile(histogram, 0.99, maximum=520.0) <= 520.0
    assert percentile([0] * len(LATENCY_COLUMNS), 0.5) is None
