"""The soak's verdict: a leak, a lost request-log row or a growing descriptor count fails it;
steady figures with the noise of requests in flight pass."""

from __future__ import annotations

import math
import random

import pytest
from bench.soak_analysis import interval_lag, quantile, slope, verdict

TOTALS = {"answered": 1000, "rows": 1000, "sent": 1000, "unexpected_errors": 0}


def samples(rss_per_hour: float = 0.0, fds_per_hour: float = 0.0, seed: int = 1) -> list[dict]:
    """30 minutes sampled every 10 s: RSS and descriptors with the given trend plus noise."""
    rng = random.Random(seed)
    rows = []
    for i in range(1, 181):
        t = i * 10.0
        rows.append(
            {
                "t": t,
                "rss_mib": 120 + rss_per_hour * t / 3600 + rng.uniform(-0.5, 0.5),
                "fds": round(50 + fds_per_hour * t / 3600 + rng.uniform(-4, 4)),
                "tasks": 20 + rng.randint(-6, 6),
                "upstream_connections": 16 + rng.randint(-2, 2),
                "lag_p99_ms": 4.0,
            }
        )
    return rows


def test_slope_is_the_least_squares_fit():
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert slope([(0, 0), (1, 1), (2, 0), (3, 1)]) == pytest.approx(0.2)
    assert slope([(5, 1)]) == 0.0


def test_quantile_interpolates_within_the_bucket_like_prometheus():
    buckets = {0.001: 50, 0.005: 90, 0.025: 100, math.inf: 100}
    assert quantile(buckets, 100, 0.5) == pytest.approx(0.001)
    assert quantile(buckets, 100, 0.99) == pytest.approx(0.005 + 0.02 * 0.9)
    assert quantile({0.1: 0, math.inf: 10}, 10, 0.99) == 0.1  # past the last bound
    assert quantile(buckets, 0, 0.99) is None


def test_loop_lag_of_an_interval_is_taken_from_the_deltas():
    before = {0.005: 1000.0, 0.1: 1000.0, math.inf: 1000.0, -1: 1000.0}
    after = {0.005: 1090.0, 0.1: 1100.0, math.inf: 1100.0, -1: 1100.0}
    lag = interval_lag(before, after)
    assert lag["lag_samples"] == 100
    assert lag["lag_p99_ms"] == pytest.approx((0.005 + 0.095 * 0.9) * 1000)
    assert lag["lag_worst_bucket_ms"] == pytest.approx(100.0)


def test_steady_figures_pass():
    checks = verdict(samples(), 300, TOTALS)
    assert checks["pass"], checks
    assert abs(checks["rss_mib_per_hour"]) < 1


def test_a_memory_leak_fails_with_its_rate():
    checks = verdict(samples(rss_per_hour=12), 300, TOTALS)
    assert not checks["rss_pass"] and not checks["pass"]
    assert checks["rss_mib_per_hour"] == pytest.approx(12, abs=1)


def test_growth_during_warm_up_only_is_not_a_leak():
    rows = samples()
    for row in rows:
        row["rss_mib"] += min(row["t"], 300) / 30  # +10 MiB in the first five minutes
    assert verdict(rows, 300, TOTALS)["rss_pass"]


def test_descriptor_growth_fails():
    checks = verdict(samples(fds_per_hour=40), 300, TOTALS)
    assert not checks["fds_pass"] and not checks["pass"]


def test_a_lost_row_or_unexpected_errors_fail():
    assert verdict(samples(), 300, {**TOTALS, "rows": 999})["lost_rows"] == 1
    assert not verdict(samples(), 300, {**TOTALS, "rows": 999})["pass"]
    assert not verdict(samples(), 300, {**TOTALS, "unexpected_errors": 5})["pass"]
