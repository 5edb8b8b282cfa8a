"""Settlements that cannot reach Redis reach it once it is back, exactly once: Redis paused
(SIGSTOP) while requests end, a settlement whose reply is lost, and the queue's bound."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import pytest

from perpetuo.limits import LimitEngine
from perpetuo.limits import guard as guard_module
from perpetuo.limits import retry as retry_module
from perpetuo.limits.backend import BackendUnavailable, Check, Kind, Settlement
from perpetuo.limits.memory import MemoryBackend
from perpetuo.limits.redis_backend import RedisBackend
from perpetuo.observability.metrics import GatewayMetrics
from tests.limits.support import Clock, counters, make_request

BOUND = 1.5  # seconds: the most a settlement may keep its request waiting, Redis away or not
# A meter of so few tokens a minute keeps its key in Redis for seconds after a settlement.
LIMITS = {"tpm": 4_500, "budget_usd": 1000.0, "budget_period": "daily"}
REQUEST = {"key_limits": LIMITS, "max_output_tokens": 100, "max_cost_micros": 50_000}
# These tests read Redis's counters for each request's own settlement: leases (test_leases.py)
# would hold room in them beside the requests'.
EXACT = {"leases": False}


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard_module, "PAUSE_SECONDS", 0.3)
    monkeypatch.setattr(retry_module, "RETRY_SECONDS", 0.05)


async def drained(limits: LimitEngine, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not limits.retries.idle:
        assert time.monotonic() < deadline, f"{len(limits.retries)} settlements still queued"
        await asyncio.sleep(0.05)


async def test_settlements_made_while_redis_is_paused_are_applied_once_when_it_resumes(own_redis):
    limits = LimitEngine(
        RedisBackend(own_redis.url, **EXACT), fallback=MemoryBackend(), clock=Clock()
    )
    requests = [make_request(**REQUEST, prompt_tokens=100) for _ in range(20)]
    try:
        admitted = [await limits.admit(request) for request in requests]
        assert limits.stats.local_fallbacks == 0  # every one reserved in Redis
        assert own_redis.proc is not None
        own_redis.proc.send_signal(signal.SIGSTOP)
        # The first ten end together: their call reaches Redis's socket and times out (Redis
        # runs it when it resumes); the next ten end while the gateway leaves Redis alone.
        started = time.monotonic()
        await asyncio.gather(*(a.settle(10 + i, 1_000 + i) for i, a in enumerate(admitted[:10])))
        await asyncio.gather(*(a.settle(20 + i, 2_000 + i) for i, a in enumerate(admitted[10:])))
        assert time.monotonic() - started < BOUND
        assert limits.stats.redis_failures >= 1 and limits.stats.settles_queued == 20
        await asyncio.sleep(1.0)  # Redis stays away past the pause: retries fail, and wait
        own_redis.proc.send_signal(signal.SIGCONT)
        await drained(limits)
        found = await counters(own_redis.url)
    finally:
        await limits.aclose()
    costs = sum(1_000 + i for i in range(10)) + sum(2_000 + i for i in range(10))
    tokens = sum(10 + i for i in range(10)) + sum(20 + i for i in range(10))
    # Each request's real cost and tokens once: no hold left, no reservation counted.
    assert found["usd"]["s"] == costs and found["usd"]["h"] == 0
    assert found["tpm"]["l"] == tokens * 60_000  # the clock stands still: the meter holds all
    assert "tickets" not in found  # every admission settled
    assert limits.stats.settles_retried == 20 and limits.stats.settles_dropped == 0


class LostReplies(RedisBackend):
    """Redis whose settlement replies go missing: `lost` calls run and then time out,
    `refused` fail before reaching it."""

    lost = 0
    refused = 0

    async def settle(self, items, request_id, now_ms):  # type: ignore[no-untyped-def]
        if self.refused:
            self.refused -= 1
            raise BackendUnavailable("ConnectionError: connection refused")
        fired = await super().settle(items, request_id, now_ms)
        if self.lost:
            self.lost -= 1
            raise BackendUnavailable("TimeoutError: reply lost")
        return fired


async def test_a_settlement_whose_reply_was_lost_is_not_applied_again(redis_server):
    redis_server.flush()
    backend = LostReplies(redis_server.url, deadline=3.0, **EXACT)
    limits = LimitEngine(backend, fallback=MemoryBackend(), clock=Clock())
    try:
        admitted = []
        for _ in range(3):
            admitted.append(await limits.admit(make_request(**REQUEST, prompt_tokens=10)))
        backend.lost = 1
        await admitted[0].settle(5, 1_000)  # applied, but the gateway cannot know: sent again
        await drained(limits)  # past the pause, so the next one is tried at once
        backend.refused = 1
        await admitted[1].settle(6, 2_000)  # never reached Redis: sent again, applied then
        await drained(limits)
        await admitted[2].settle(7, 4_000)
        await drained(limits)
        found = await counters(redis_server.url)
    finally:
        await limits.aclose()
    assert limits.stats.settles_queued == 2 and limits.stats.settles_retried == 2
    assert found["usd"]["s"] == 7_000 and found["usd"]["h"] == 0
    assert found["tpm"]["l"] == (5 + 6 + 7) * 60_000


async def test_a_settlement_applies_once_and_a_released_slot_keeps_it_pending(redis_server):
    redis_server.flush()
    backend = RedisBackend(redis_server.url, deadline=3.0)
    budget = Check(Kind.WINDOW, "{ws_1}:usd:k:a", 10_000, 5_000, ttl_ms=60_000, hold_ms=60_000)
    slot = Check(Kind.SLOTS, "{ws_1}:par:k:a", 2, hold_ms=60_000)
    try:
        assert (await backend.reserve([budget, slot], "r1", 1_000)).admitted
        await backend.settle([Settlement(Kind.SLOTS, slot.key, 2, 0)], "r1", 1_000)  # release
        spent = [Settlement(Kind.WINDOW, budget.key, 10_000, 3_000)]
        for _ in range(3):  # the same settlement, sent again and again
            await backend.settle(spent, "r1", 1_000)
        found = await counters(redis_server.url)
    finally:
        await backend.aclose()
    assert found["usd"]["s"] == 3_000 and found["usd"]["h"] == 0


class Unreachable(MemoryBackend):
    """A shared backend whose settlements fail while `down`."""

    name = "redis"
    down = False

    async def settle(self, items, request_id, now_ms):  # type: ignore[no-untyped-def]
        if self.down:
            raise BackendUnavailable("ConnectionError: connection refused")
        return await super().settle(items, request_id, now_ms)


async def test_the_queue_is_bounded_dropping_the_oldest_with_a_count_and_a_warning(caplog):
    shared = Unreachable()
    limits = LimitEngine(shared, fallback=MemoryBackend(), clock=Clock())
    limits.retries.max_pending = 3
    caplog.set_level(logging.WARNING, "perpetuo.limits")
    try:
        admitted = [await limits.admit(make_request(key_limits={"tpm": 1000})) for _ in range(5)]
        shared.down = True
        for admission in admitted:
            await admission.settle(1, 0)
        assert len(limits.retries) == 3 and limits.stats.settles_dropped == 2
        shared.down = False
        await drained(limits)
    finally:
        await limits.aclose()
    assert limits.stats.settles_retried == 3
    dropped = [r for r in caplog.records if "settlements dropped" in r.getMessage()]
    assert len(dropped) == 1  # once a minute, not per settlement
    metrics = GatewayMetrics(set(), set())
    metrics.refresh_limits(limits.stats)
    metrics.refresh_limits(limits.stats)  # counters advance by the change only
    text = metrics.render()[0].decode()
    for outcome, count in (("queued", 5), ("retried", 3), ("dropped", 2)):
        assert (
            f'perpetuo_limits_settlements_deferred_total{{outcome="{outcome}"}} {count}.0' in text
        )


async def test_usage_admitted_locally_while_redis_is_paused_reaches_its_budget_once(own_redis):
    limits = LimitEngine(
        RedisBackend(own_redis.url, **EXACT), fallback=MemoryBackend(), clock=Clock()
    )
    try:
        first = await limits.admit(make_request(**REQUEST, prompt_tokens=10))
        await first.settle(5, 1_000)  # the budget's counter exists in Redis before the outage
        assert own_redis.proc is not None
        own_redis.proc.send_signal(signal.SIGSTOP)
        admitted = []
        for _ in range(10):
            admitted.append(await limits.admit(make_request(**REQUEST, prompt_tokens=10)))
        assert limits.stats.local_fallbacks == 10  # admitted by this instance's own counters
        await asyncio.gather(*(a.settle(5, 2_000 + i) for i, a in enumerate(admitted)))
        own_redis.proc.send_signal(signal.SIGCONT)
        await drained(limits)
        found = await counters(own_redis.url)
    finally:
        await limits.aclose()
    # Redis's budget has what the outage spent, once; the admission before it left no hold.
    assert found["usd"]["s"] == 1_000 + sum(2_000 + i for i in range(10))
    assert found["usd"]["h"] == 0
    assert limits.stats.settles_retried == 10 and limits.stats.settles_dropped == 0


async def test_forwarded_usage_applies_once_and_only_to_counters_born_before_it(redis_server):
    redis_server.flush()
    backend = RedisBackend(redis_server.url, deadline=3.0)
    budget = Check(Kind.WINDOW, "{ws_1}:usd:k:a", 10_000, 5_000, ttl_ms=60_000, hold_ms=60_000)
    usage = [Settlement(Kind.WINDOW, budget.key, 10_000, 700)]
    try:
        await backend.forward(usage, "early", 500)  # no counter: its seed will read the log
        assert (await backend.reserve([budget], "r1", 1_000)).admitted  # created at 1,000 ms
        await backend.settle([Settlement(Kind.WINDOW, budget.key, 10_000, 3_000)], "r1", 1_000)
        await backend.forward(usage, "before", 900)  # settled before the counter was created
        for _ in range(3):  # settled after it; sent again (a lost reply): applied once
            await backend.forward(usage, "after", 2_000)
        found = await counters(redis_server.url)
    finally:
        await backend.aclose()
    assert found["usd"]["s"] == 3_700 and found["usd"]["h"] == 0
