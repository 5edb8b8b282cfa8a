"""Redis trouble never hangs a request: fail open checks limits locally (and counts it),
fail closed answers 503 at once; Redis that stops mid-traffic, refuses connections, or
accepts them and never answers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from perpetuo.limits import LimitEngine, WorkspaceLimits
from perpetuo.limits import engine as engine_module
from perpetuo.limits import guard as guard_module
from perpetuo.limits.backend import BackendUnavailable, Check, Kind
from perpetuo.limits.history import NoHistory
from perpetuo.limits.memory import MemoryBackend
from perpetuo.limits.planning import credit_key
from perpetuo.limits.redis_backend import RedisBackend
from perpetuo.schema.errors import ErrorCode, GatewayError
from tests.limits.support import Clock, attempt, make_request
from tests.support.gateway import free_port
from tests.support.services import RedisServer

BOUND = 0.6  # seconds: the most any admission may take, whatever Redis does


def guarded(url: str, policy: str = "open") -> LimitEngine:
    return LimitEngine(
        RedisBackend(url), fallback=MemoryBackend(), failure_policy=policy, clock=Clock()
    )


async def timed_admits(limits: LimitEngine, count: int, **request) -> list:
    outcomes = []
    for _ in range(count):
        started = time.perf_counter()
        outcomes.append(await attempt(limits.admit(make_request(**request))))
        assert time.perf_counter() - started < BOUND
    return outcomes


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A server that accepts connections and never answers (a hung Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()


@pytest.mark.parametrize("where", ["closed port", "silent server"])
async def test_fail_open_checks_limits_locally(where, silent_port, caplog):
    port = free_port() if where == "closed port" else silent_port
    limits = guarded(f"redis://127.0.0.1:{port}/0")
    caplog.set_level(logging.WARNING, "perpetuo.limits")
    try:
        outcomes = await timed_admits(limits, 15, key_limits={"rpm": 10})
        admitted = [o for o in outcomes if not isinstance(o, GatewayError)]
        assert len(admitted) == 10  # local limits still hold
        assert limits.stats.redis_failures >= 1 and limits.stats.local_fallbacks == 15
        for admission in admitted:
            await admission.settle(1, 0)
        warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(warnings) == 1  # once a minute, not per request
    finally:
        await limits.aclose()


async def test_fail_closed_answers_503_at_once(silent_port):
    for url in (f"redis://127.0.0.1:{free_port()}/0", f"redis://127.0.0.1:{silent_port}/0"):
        limits = guarded(url, "closed")
        try:
            outcomes = await timed_admits(limits, 5, key_limits={"rpm": 10})
            assert all(isinstance(o, GatewayError) for o in outcomes)
            assert {(o.status, o.code) for o in outcomes} == {(503, ErrorCode.LIMITS_UNAVAILABLE)}
            assert outcomes[0].headers["retry-after"] == "1"
            assert limits.stats.unavailable == 5
        finally:
            await limits.aclose()


async def test_requests_without_limits_never_touch_redis():
    limits = guarded(f"redis://127.0.0.1:{free_port()}/0", "closed")
    admission = await limits.admit(make_request(key_limits={}))
    assert admission.headers == [] and limits.stats.redis_failures == 0
    await admission.settle(1, 1)


async def test_redis_stopping_mid_traffic_then_coming_back(monkeypatch):
    monkeypatch.setattr(guard_module, "PAUSE_SECONDS", 0.2)
    server = RedisServer().start()
    limits = guarded(server.url)
    try:
        before = await timed_admits(limits, 4, key_limits={"rpm": 6})
        assert limits.stats.redis_failures == 0 and limits.stats.local_fallbacks == 0
        server.stop()
        during = await timed_admits(limits, 8, key_limits={"rpm": 6})
        # Local counters start empty: this instance alone enforces the limit meanwhile.
        assert sum(not isinstance(o, GatewayError) for o in during) == 6
        assert limits.stats.redis_failures >= 1
        started = time.perf_counter()
        for admission in before:
            await admission.settle(1, 0)  # Redis is gone: settling must not raise or hang
        assert time.perf_counter() - started < BOUND
        server.proc = None
        restarted = RedisServer()
        restarted.port = server.port
        restarted.start()
        try:
            await asyncio.sleep(0.25)  # the pause after a failure ends
            after = await timed_admits(limits, 3, key_limits={"rpm": 6})
            # Back on Redis, which still remembers nothing of the outage: 3 fresh requests.
            assert all(not isinstance(o, GatewayError) for o in after)
            assert limits.guard.pick() is limits.guard.primary
        finally:
            restarted.stop()
    finally:
        await limits.aclose()
        server.stop()


class FlakyGrants(MemoryBackend):
    """A shared backend that is unreachable for the first few credit changes."""

    name = "redis"

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def add_to_window(self, key: str, delta: int) -> None:
        if self.failures:
            self.failures -= 1
            raise BackendUnavailable("connection refused")
        await super().add_to_window(key, delta)


class TenCents(NoHistory):
    async def credit_balance(self, workspace_id: str) -> int:
        return 100_000


async def test_a_grant_reaches_the_shared_balance_after_an_outage(monkeypatch):
    monkeypatch.setattr(engine_module, "GRANT_RETRY_SECONDS", 0.01)
    shared = FlakyGrants(failures=3)
    limits = LimitEngine(shared, fallback=MemoryBackend(), history=TenCents(), clock=Clock())
    paying = WorkspaceLimits(credits_required=True)
    try:
        first = await limits.admit(make_request(workspace=paying, max_cost_micros=100_000))
        await first.settle(1, 100_000)  # the shared counter exists now, at a zero balance
        await limits.credits_granted("ws_1", 50_000)  # fails three times, then lands
        for _ in range(100):
            if not shared.failures:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        probe = Check(
            Kind.WINDOW, credit_key("ws_1"), 0, 50_000, ttl_ms=60_000, hold_ms=60_000, seedable=True
        )
        assert (await shared.reserve([probe], "probe", 1)).admitted  # the shared balance
        assert not (await shared.reserve([probe], "probe2", 1)).admitted  # ... of exactly it
    finally:
        await limits.aclose()
