"""Sign-in throttling: backoff per (account, address) and per address, in memory and in Redis,
and sign-in that keeps working (throttled per instance) when Redis is gone."""

from __future__ import annotations

import time

import pytest

from perpetuo.auth import throttle as T
from perpetuo.auth.throttle import LoginThrottle, MemoryThrottleStore, RedisThrottleStore
from tests.support.gateway import free_port
from tests.support.services import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_defaults_are_the_documented_ones():
    throttle = LoginThrottle()
    assert (throttle.pair_limit, throttle.ip_limit, throttle.account_alert) == (5, 20, 50)
    assert throttle.window == 900.0 and (T.BASE_DELAY, T.MAX_DELAY) == (30.0, 900.0)
    assert isinstance(throttle.store, MemoryThrottleStore)
    assert isinstance(T.login_throttle(None).store, MemoryThrottleStore)
    assert isinstance(T.login_throttle("redis://127.0.0.1:1/0").store, RedisThrottleStore)


@pytest.fixture(params=["memory", "redis"])
async def store(request):
    if request.param == "memory":
        yield MemoryThrottleStore()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    redis_store = RedisThrottleStore(server.url)
    yield redis_store
    await redis_store.aclose()


async def test_an_address_backs_off_from_an_account_with_growing_waits(store):
    clock = Clock()
    throttle = LoginThrottle(store, clock=clock)
    for _ in range(4):
        await throttle.failed("ann@example.com", "10.0.0.1")
        clock.now += 1
    assert await throttle.retry_after("ann@example.com", "10.0.0.1") == 0
    await throttle.failed("ann@example.com", "10.0.0.1")  # the fifth
    assert await throttle.retry_after("ann@example.com", "10.0.0.1") == pytest.approx(30)
    # Only that address: the account itself is not locked for anyone else.
    assert await throttle.retry_after("ann@example.com", "10.9.9.9") == 0
    assert await throttle.retry_after("ANN@example.com ", None) == 0
    assert await throttle.retry_after("bob@example.com", "10.0.0.1") == 0
    clock.now += 30
    assert await throttle.retry_after("ann@example.com", "10.0.0.1") == 0
    await throttle.failed("ann@example.com", "10.0.0.1")  # each further failure doubles
    assert await throttle.retry_after("ann@example.com", "10.0.0.1") == pytest.approx(60)
    clock.now += 60
    await throttle.failed("ann@example.com", "10.0.0.1")
    assert await throttle.retry_after("ann@example.com", "10.0.0.1") == pytest.approx(120)
    for _ in range(10):
        await throttle.failed("ann@example.com", "10.0.0.1")
    assert await throttle.retry_after("ann@example.com", "10.0.0.1") == pytest.approx(900)
    clock.now += 901  # the window slid past them all
    assert await throttle.retry_after("ann@example.com", "10.0.0.1") == 0


async def test_address_backs_off_across_accounts(store):
    clock = Clock()
    throttle = LoginThrottle(store, clock=clock)
    for i in range(20):
        await throttle.failed(f"user{i}@example.com", "10.0.0.2")
    assert await throttle.retry_after("fresh@example.com", "10.0.0.2") == pytest.approx(30)
    assert await throttle.retry_after("fresh@example.com", "10.0.0.3") == 0
    assert await throttle.retry_after("fresh@example.com", None) == 0


async def test_an_account_under_attack_slows_every_address_that_failed_on_it(store):
    clock = Clock()
    throttle = LoginThrottle(store, account_alert=6, clock=clock)
    for i in range(6):  # a botnet: one guess from each address
        await throttle.failed("root@example.com", f"10.5.0.{i}")
    assert await throttle.retry_after("root@example.com", "10.5.0.1") == pytest.approx(30)
    assert await throttle.retry_after("root@example.com", "10.6.0.1") == 0  # never failed


async def test_success_clears_the_pair_but_not_the_address(store):
    clock = Clock()
    throttle = LoginThrottle(store, pair_limit=3, ip_limit=5, clock=clock)
    for _ in range(3):
        await throttle.failed("cy@example.com", "10.0.0.4")
    assert await throttle.retry_after("cy@example.com", "10.0.0.4") > 0
    await throttle.succeeded("cy@example.com", "10.0.0.4")
    assert await throttle.retry_after("cy@example.com", "10.0.0.4") == 0
    await throttle.failed("cy@example.com", "10.0.0.4")
    await throttle.failed("cy@example.com", "10.0.0.4")
    assert await throttle.retry_after("other@example.com", "10.0.0.4") > 0  # 5 from the address


async def test_redis_counts_are_shared_by_instances(redis_server):
    redis_server.flush()
    clock = Clock()
    first = LoginThrottle(RedisThrottleStore(redis_server.url), clock=clock)
    second = LoginThrottle(RedisThrottleStore(redis_server.url), clock=clock)
    try:
        for _ in range(3):
            await first.failed("dee@example.com", "10.1.0.1")
            await second.failed("dee@example.com", "10.1.0.1")
        assert await first.retry_after("dee@example.com", "10.1.0.1") > 0  # 6 between them
        await second.succeeded("dee@example.com", "10.1.0.1")
        assert await first.retry_after("dee@example.com", "10.1.0.1") == 0
    finally:
        await first.aclose()
        await second.aclose()


async def test_unreachable_redis_neither_hangs_nor_blocks_and_still_throttles():
    dead = RedisThrottleStore(f"redis://127.0.0.1:{free_port()}/0")
    throttle = LoginThrottle(dead, pair_limit=2)
    try:
        started = time.monotonic()
        assert await throttle.retry_after("eve@example.com", "10.2.0.1") == 0
        await throttle.failed("eve@example.com", "10.2.0.1")
        await throttle.failed("eve@example.com", "10.2.0.1")
        # Counted in memory meanwhile: guessing is still limited on this instance.
        assert await throttle.retry_after("eve@example.com", "10.2.0.1") > 0
        assert time.monotonic() - started < 2 * T.REDIS_DEADLINE
    finally:
        await throttle.aclose()


async def test_redis_going_down_and_coming_back(monkeypatch, caplog):
    monkeypatch.setattr(T, "REDIS_RETRY_AFTER", 0.0)
    server = RedisServer().start()
    port = server.port
    throttle = LoginThrottle(RedisThrottleStore(server.url), pair_limit=2)
    try:
        await throttle.failed("fay@example.com", None)
        server.stop()
        await throttle.failed("fay@example.com", None)  # Redis gone: one count in memory
        assert await throttle.retry_after("fay@example.com", None) == 0
        assert "Redis unavailable" in caplog.text
        await throttle.failed("fay@example.com", None)
        assert await throttle.retry_after("fay@example.com", None) > 0
        server = RedisServer()
        server.port = port
        server.start()
        # Back in Redis, which holds no failures (a fresh server).
        assert await throttle.retry_after("fay@example.com", None) == 0
        assert "Redis is back" in caplog.text
    finally:
        await throttle.aclose()
        server.stop()


async def test_memory_store_stays_bounded():
    store = MemoryThrottleStore(max_keys=100)
    throttle = LoginThrottle(store, pair_limit=1)
    for i in range(250):
        await throttle.failed(f"spray{i}@example.com", None)
    assert len(store._hits) <= 100
    assert await throttle.retry_after("spray249@example.com", None) > 0  # recent: kept
    assert await throttle.retry_after("spray0@example.com", None) == 0  # oldest: dropped
