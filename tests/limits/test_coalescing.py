"""Admissions and settlements that arrive together share Redis round trips, and decide
exactly what they would have decided alone: every limit still admits exactly its number,
each request's usage lands in its own counters, a failure reaches every caller of a batch."""

from __future__ import annotations

import asyncio

import pytest

from perpetuo.limits.coalesce import Coalescer
from perpetuo.limits.redis_backend import RedisBackend
from perpetuo.schema.errors import ErrorCode
from tests.limits.support import Clock, admit_all, engine, make_request


@pytest.fixture
async def shared(redis_server):
    redis_server.flush()
    backends = [RedisBackend(redis_server.url, deadline=3.0) for _ in range(2)]
    yield backends
    for backend in backends:
        await backend.aclose()


async def test_concurrent_admissions_share_calls_and_stay_exact(shared):
    clock = Clock()
    engines = [engine(backend, clock) for backend in shared]  # two instances, one Redis
    limits = {"rpm": 150, "max_parallel": 1000}
    admitted, refused = await admit_all(engines, [make_request(key_limits=limits)] * 400)
    assert (len(admitted), len(refused)) == (150, 250)
    assert {e.code for e in refused} == {ErrorCode.RATE_LIMIT_REQUESTS}
    calls = sum(backend._reserves.calls for backend in shared)
    assert calls < 400 / 4  # batched: far fewer round trips than requests
    # Settled together, in shared calls: every concurrency slot comes back.
    await asyncio.gather(*(a.settle(0, 0) for a in admitted))
    assert sum(backend._settles.calls for backend in shared) < len(admitted) / 4
    clock.advance(60)
    again, _ = await admit_all(engines, [make_request(key_limits=limits)] * 200)
    assert len(again) == 150


async def test_batched_settlements_land_in_each_requests_own_counters(shared):
    clock = Clock()
    limits = engine(shared[0], clock)
    budget = {"budget_usd": 1.0}  # 1,000,000 micro-USD per key and month
    first = [
        make_request(key_id=f"key_{i}", key_limits=budget, max_cost_micros=100) for i in range(20)
    ]
    admitted, _ = await admit_all([limits], first)
    assert len(admitted) == 20
    # Key i spends (i + 1) * 10,000: settled all at once, so in shared calls.
    await asyncio.gather(*(a.settle(0, (i + 1) * 10_000) for i, a in enumerate(admitted)))
    assert shared[0]._settles.calls < 20
    for i in range(20):
        left = 1_000_000 - (i + 1) * 10_000
        fits = make_request(key_id=f"key_{i}", key_limits=budget, max_cost_micros=left)
        over = make_request(key_id=f"key_{i}", key_limits=budget, max_cost_micros=left + 1)
        admitted, refused = await admit_all([limits], [over, fits])
        assert len(admitted) == 1 and refused[0].code is ErrorCode.BUDGET_EXCEEDED


async def test_a_failed_call_fails_every_caller_in_its_batch():
    gate = asyncio.Event()
    sent: list[list[int]] = []

    async def send(batch: list[int]) -> list[int]:
        sent.append(batch)
        if len(sent) == 1:
            await gate.wait()
            return [b * 10 for b in batch]
        raise ConnectionError("gone")

    coalescer: Coalescer[int, int] = Coalescer(send)
    leader = asyncio.create_task(coalescer.call("g", 1))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(coalescer.call("g", n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    waiting[1].cancel()  # gave up before its batch left: it is not sent
    gate.set()
    assert await leader == 10
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert isinstance(results[0], ConnectionError) and isinstance(results[2], ConnectionError)
    assert isinstance(results[1], asyncio.CancelledError)
    assert sent == [[1], [2, 4]]


async def test_a_queued_caller_waits_no_longer_than_its_bound():
    """The call in flight hangs (its own deadline is longer): those queued behind it give up
    after `wait_bound` instead of waiting on it, so no request outlives the Redis deadline."""
    hang = asyncio.Event()

    async def send(batch: list[int]) -> list[int]:
        await hang.wait()
        return batch

    coalescer: Coalescer[int, int] = Coalescer(send, wait_bound=0.05)
    leader = asyncio.create_task(coalescer.call("g", 1))
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await coalescer.call("g", 2)
    assert asyncio.get_running_loop().time() - started < 1.0
    hang.set()
    assert await leader == 1
