"""The leak gauges read at scrape time: open upstream connections and live event-loop tasks
follow what the process holds, up and back down."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from perpetuo.observability.metrics import GatewayMetrics
from perpetuo.transport import URL, HTTPClient, Timeouts

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


def gauge(metrics: GatewayMetrics, name: str) -> float:
    for family in text_string_to_metric_families(metrics.render()[0].decode()):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not exposed")


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.readuntil(b"\r\n\r\n"):  # keep-alive: one answer per request head
        writer.write(ANSWER)
        await writer.drain()


async def test_open_upstream_connections_are_counted_until_closed():
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    metrics = GatewayMetrics(set(), set())
    before = gauge(metrics, "perpetuo_upstream_connections_open")
    client = HTTPClient()
    timeouts = Timeouts(connect=5, first_byte=5, read=5, total=10)

    async def call() -> None:
        url = URL.parse(f"http://127.0.0.1:{port}/v1/x")
        response = await client.request("GET", url, [], b"", timeouts)
        async for _ in response.iter_bytes():
            pass

    try:
        await asyncio.gather(*(call() for _ in range(3)))  # three at once: three sockets
        assert gauge(metrics, "perpetuo_upstream_connections_open") == before + 3
        await call()  # a pooled one is reused, none added
        assert gauge(metrics, "perpetuo_upstream_connections_open") == before + 3
    finally:
        await client.aclose()
        server.close()
    await asyncio.sleep(0.05)  # connection_lost runs on the next loop turns
    assert gauge(metrics, "perpetuo_upstream_connections_open") == before


async def test_live_tasks_are_counted_at_scrape_time():
    metrics = GatewayMetrics(set(), set())
    before = gauge(metrics, "perpetuo_event_loop_tasks")
    assert before >= 1  # the test itself runs in a task
    stuck = [asyncio.create_task(asyncio.sleep(60)) for _ in range(5)]
    await asyncio.sleep(0)
    assert gauge(metrics, "perpetuo_event_loop_tasks") == before + 5
    for task in stuck:
        task.cancel()
    await asyncio.gather(*stuck, return_exceptions=True)
    assert gauge(metrics, "perpetuo_event_loop_tasks") == before
