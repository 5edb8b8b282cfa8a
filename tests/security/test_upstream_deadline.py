"""The total timeout holds however the upstream sends (a flood that always has data ready,
one line that never ends), and reading such an upstream never stalls the event loop for the
gateway's other requests: the SSE decoder does linear work for any line length."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from perpetuo.transport.errors import ResponseTooLarge
from perpetuo.transport.sse import SSEDecoder
from tests.mocks.hostile_mock import HostileMock, MiB, config_for
from tests.support.gateway import MASTER_KEY, GatewayProcess

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello"}]
TOTAL = 2.0  # the provider's total timeout, seconds


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileMock]:
    mock = HostileMock().start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def gateway(hostile: HostileMock, tmp_path_factory: pytest.TempPathFactory):
    config = config_for(hostile, "ok", "flood", "endless-line", timeouts={"total": TOTAL})
    # A large event cap, so the endless line is read for a while instead of refused at once.
    config["providers"]["hostile"]["upstream_limits"] = {"max_event_bytes": 256 * MiB}
    config["providers"]["calm"] = {
        "type": "openai",
        "api_base": f"{hostile.url}/v1",
        "api_key": "sk-calm",
    }
    config["models"]["canary"] = {"deployments": [{"provider": "calm", "model": "ok"}]}
    with GatewayProcess(config, tmp_path_factory.mktemp("deadline")) as process:
        yield process


def test_a_stream_that_always_has_data_still_ends_at_the_total_timeout(gateway):
    started = time.monotonic()
    last: dict = {}
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "flood", "messages": HELLO, "stream": True},
        headers=AUTH,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                last = json.loads(line[6:])
            if time.monotonic() - started > 20:
                pytest.fail("the flood outlived the total timeout by far")
    elapsed = time.monotonic() - started
    assert last["error"]["code"] == "upstream_timeout"
    assert elapsed < TOTAL + 3


def test_an_endless_line_ends_at_the_deadline_and_others_are_served_meanwhile(gateway, hostile):
    hostile.line_rate = 64 * MiB  # bytes a second: ~130 MB before the deadline, under the cap
    outcome: dict = {}

    def attack() -> None:
        started = time.monotonic()
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "endless-line", "messages": HELLO, "stream": True},
            headers=AUTH,
            timeout=60,
        )
        outcome["status"] = response.status_code
        outcome["code"] = response.json()["error"]["code"]
        outcome["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=attack)
    thread.start()
    time.sleep(0.3)
    latencies = []
    with httpx.Client(timeout=10) as client:
        while thread.is_alive() and len(latencies) < 400:
            started = time.monotonic()
            response = client.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "canary", "messages": HELLO},
                headers=AUTH,
            )
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
    thread.join(60)
    assert outcome["status"] == 504 and outcome["code"] == "upstream_timeout"
    assert outcome["elapsed"] < TOTAL + 3
    assert len(latencies) >= 5
    assert statistics.median(latencies) < 0.1
    assert max(latencies) < 0.5  # no read of the growing line held the loop for long


async def test_a_huge_line_is_decoded_in_linear_time():
    async def network() -> AsyncIterator[bytes]:
        yield b"data: "
        piece = b"x" * 65536
        for _ in range(512):  # 32 MiB in network-sized reads
            yield piece
        yield b"\n\n"

    started = time.perf_counter()
    events = [e async for e in SSEDecoder(network(), max_event_bytes=64 * MiB)]
    elapsed = time.perf_counter() - started
    assert len(events) == 1 and len(events[0].data) == 32 * MiB
    assert elapsed < 2.0  # quadratic rescanning took over ten seconds here


async def test_a_line_past_the_cap_is_refused_without_reading_on():
    reads = 0

    async def network() -> AsyncIterator[bytes]:
        nonlocal reads
        yield b"data: "
        while True:
            reads += 1
            yield b"x" * 65536
            await asyncio.sleep(0)

    with pytest.raises(ResponseTooLarge):
        async for _ in SSEDecoder(network(), max_event_bytes=1 * MiB):
            pass
    assert reads <= 17  # 1 MiB in 64 KiB reads, and not one more
