"""GCRA arithmetic with an injected clock, on both backends: burst, steady refill, waits,
token weights, refunds that never go below empty, and the same answers from memory and Redis."""

from __future__ import annotations

import random

from perpetuo.limits import gcra
from perpetuo.limits.backend import Check, Kind, Settlement
from perpetuo.limits.memory import MemoryBackend
from perpetuo.limits.redis_backend import RedisBackend

T0 = 1_750_000_000_000  # ms


def rate(key: str, limit: int, amount: int = 1) -> Check:
    # Corrected at settlement (as a tokens-per-minute meter is): its settlement needs a ticket.
    return Check(Kind.RATE, key, limit, amount, corrected=True)


def test_meter_math():
    assert gcra.wait_ms(0, 100, 100) == 0  # a full minute's worth fits at once from idle
    level = 100 * gcra.PERIOD_MS
    assert gcra.remaining(level, 100) == 0
    assert gcra.wait_ms(level, 1, 100) == 600  # then one every 60/100 s
    assert gcra.reset_ms(level, 100) == 60_000
    assert gcra.wait_ms(0, 101, 100) == gcra.NEVER
    meter = gcra.Meter(level, T0)
    assert meter.drained(T0 + 30_000, 100) == 50 * gcra.PERIOD_MS
    assert meter.drained(T0 - 5, 100) == level  # a clock behind the stamp drains nothing
    assert meter.drained(T0 + 60_000, 100) == 0
    assert gcra.settle_level(10 * gcra.PERIOD_MS, -25) == 0  # refunds stop at empty
    # Limits that do not divide a minute evenly still admit exactly `limit` from idle.
    for limit in (1, 3, 7, 97, 1000, 999_983):
        assert gcra.wait_ms((limit - 1) * gcra.PERIOD_MS, 1, limit) == 0
        assert gcra.wait_ms(limit * gcra.PERIOD_MS, 1, limit) > 0


async def test_burst_then_steady_rate(backends):
    backend = backends()
    checks = [rate("{w}:rpm:k:a", 100)]
    results = [await backend.reserve(checks, f"r{i}", T0) for i in range(101)]
    assert all(r.admitted for r in results[:100])
    assert results[100].refused == [(0, 600, 100 * gcra.PERIOD_MS)]
    assert results[99].states == [(0, 60_000)]
    assert results[0].states == [(99, 600)]
    assert not (await backend.reserve(checks, "early", T0 + 599)).admitted
    assert (await backend.reserve(checks, "on-time", T0 + 600)).admitted
    later = await backend.reserve(checks, "half", T0 + 600 + 30_000)
    assert later.states == [(49, 30_600)]  # half a minute drained 50; this request took one


async def test_token_weights_settle_and_refund(backends):
    backend = backends()
    key = "{w}:tpm:k:a"
    first = await backend.reserve([rate(key, 1000, 600)], "a", T0)
    assert first.states == [(400, 36_000)]
    assert (await backend.reserve([rate(key, 1000, 500)], "b", T0)).refused[0][:2] == (0, 6000)
    # The request really used 100 tokens: 500 come back, and 500 now fit.
    await backend.settle([Settlement(Kind.RATE, key, 1000, 100 - 600)], "a", T0)
    assert (await backend.reserve([rate(key, 1000, 500)], "c", T0)).states == [(400, 36_000)]
    # Refunding more than is counted leaves the meter empty, never below.
    await backend.settle([Settlement(Kind.RATE, key, 1000, -5000)], "c", T0)
    assert (await backend.reserve([rate(key, 1000, 1000)], "d", T0)).admitted
    # Usage above the estimate is charged too: the meter runs into debt and must drain.
    await backend.settle([Settlement(Kind.RATE, key, 1000, 500)], "d", T0)
    refused = await backend.reserve([rate(key, 1000, 1)], "e", T0)
    assert refused.refused[0][:2] == (0, 30_060)


async def test_a_request_larger_than_the_limit_never_fits(backends):
    backend = backends()
    result = await backend.reserve([rate("{w}:tpm:k:big", 100, 101)], "r", T0)
    assert result.refused == [(0, gcra.NEVER, 0)]


async def test_memory_and_redis_give_the_same_answers(redis_server):
    """A random sequence of reserves, settles and clock steps, run on both backends."""
    redis_server.flush()
    memory, shared = MemoryBackend(), RedisBackend(redis_server.url)
    rng = random.Random(7)
    now = T0
    admitted: list[tuple[str, int, str]] = []  # settled once each, in random order
    try:
        for step in range(400):
            now += rng.choice((0, 0, 1, 37, 600, 5_000))
            limit = rng.choice((5, 60, 1000))
            key = f"{{w}}:r:{limit}"
            if rng.random() < 0.8 or not admitted:
                checks = [rate(key, limit, rng.randint(1, limit // 2 or 1))]
                a = await memory.reserve(checks, f"s{step}", now)
                b = await shared.reserve(checks, f"s{step}", now)
                assert (a.refused, a.states) == (b.refused, b.states), step
                if a.admitted:
                    admitted.append((key, limit, f"s{step}"))
            else:
                key, limit, request_id = admitted.pop(rng.randrange(len(admitted)))
                item = [Settlement(Kind.RATE, key, limit, rng.randint(-limit, limit))]
                await memory.settle(item, request_id, now)
                await shared.settle(item, request_id, now)
    finally:
        await shared.aclose()
