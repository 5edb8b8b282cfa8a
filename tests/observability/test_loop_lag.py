"""The event-loop lag histogram: a loop held by blocking work shows as lag, in process and
in a real gateway process whose loop is stopped mid-run."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from perpetuo.observability.loop_lag import LoopLagMonitor
from perpetuo.observability.metrics import GatewayMetrics
from tests.conftest import full_config
from tests.support.gateway import GatewayProcess

LAG = "perpetuo_event_loop_lag_seconds"


def lag_buckets(text: str) -> dict[str, float]:
    """The histogram's cumulative bucket counts by upper bound, and its count."""
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{LAG}_bucket":
                values[sample.labels["le"]] = sample.value
            elif sample.name == f"{LAG}_count":
                values["count"] = sample.value
    return values


async def test_a_blocked_loop_is_counted_as_lag():
    metrics = GatewayMetrics(set(), set())
    monitor = LoopLagMonitor(metrics.loop_lag.observe, interval=0.02).start()
    try:
        await asyncio.sleep(0.2)  # idle: ticks on time
        quiet = lag_buckets(metrics.render()[0].decode())
        assert quiet["count"] >= 3
        assert quiet["0.25"] == quiet["count"]  # no idle tick was late by a stall
        monitor.take_worst()
        time.sleep(0.3)  # noqa: ASYNC251 - the stall under test: blocking the loop itself
        await asyncio.sleep(0.1)
    finally:
        monitor.stop()
    after = lag_buckets(metrics.render()[0].decode())
    # One tick ran about 0.28 s late: above the 0.25 s bound, within the 0.5 s one.
    assert after["0.25"] == after["count"] - 1
    assert after["0.5"] == after["count"]
    assert 0.25 < monitor.take_worst() < 0.5


async def test_a_stopped_monitor_samples_no_more():
    seen: list[float] = []
    monitor = LoopLagMonitor(seen.append, interval=0.01).start()
    await asyncio.sleep(0.1)
    monitor.stop()
    count = len(seen)
    await asyncio.sleep(0.1)
    assert count >= 3 and len(seen) == count


def test_the_gateway_exports_a_stall_of_its_loop(mocks, tmp_path):
    config, env = full_config(mocks)
    with GatewayProcess(config, tmp_path, env=env) as gateway:
        assert gateway.proc is not None

        def scrape() -> dict[str, float]:
            return lag_buckets(httpx.get(f"{gateway.url}/metrics").text)

        time.sleep(0.5)
        before = scrape()
        assert before["count"] > 0
        # Freeze the whole process for 0.6 s, as a long stall of its loop would.
        os.kill(gateway.proc.pid, signal.SIGSTOP)
        time.sleep(0.6)
        os.kill(gateway.proc.pid, signal.SIGCONT)
        time.sleep(0.3)
        after = scrape()
        assert after["count"] > before["count"]
        stalled = (after["count"] - after["0.25"]) - (before["count"] - before["0.25"])
        assert stalled == 1  # the one tick that was due while the process stood still
