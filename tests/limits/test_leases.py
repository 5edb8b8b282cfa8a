"""Leases: far from its limits, a counter is checked on an instance's share of it, held in
Redis, without a round trip. They must never let instances pass a limit, never lose or
double usage, and step aside near a limit and when Redis is away.

Renewals run by hand here (`flush`), so each test decides when leases are granted."""

from __future__ import annotations

import signal

import pytest
import redis.asyncio as redis

from perpetuo.limits import LimitEngine
from perpetuo.limits import guard as guard_module
from perpetuo.limits import leases as leases_module
from perpetuo.limits.backend import BackendUnavailable
from perpetuo.limits.history import NoHistory
from perpetuo.limits.leases import FULL_LOOK_EVERY, IDLE_LOOKS, LEASE_MS, SAFETY_MS
from perpetuo.limits.memory import MemoryBackend
from perpetuo.limits.redis_backend import RedisBackend
from perpetuo.observability.metrics import GatewayMetrics
from perpetuo.schema.errors import ErrorCode, GatewayError
from tests.limits.support import Clock, admit_all, counters, engine, make_request

BUDGET = {"budget_usd": 1.0, "budget_period": "daily"}  # 1,000,000 micro-USD


def leased(url: str, **options) -> RedisBackend:  # type: ignore[no-untyped-def]
    backend = RedisBackend(url, deadline=3.0, socket_timeout=3.0, **options)
    assert backend.leases is not None
    backend.leases.flush_seconds = 3600  # renewals by hand only
    return backend


def renewals(backend: RedisBackend):  # type: ignore[no-untyped-def]
    assert backend.leases is not None
    return backend.leases


class CountingReserves(RedisBackend):
    """Counts the requests checked in Redis itself."""

    checked = 0

    async def _reserve(self, checks, request_id, now_ms):  # type: ignore[no-untyped-def]
        self.checked += 1
        return await super()._reserve(checks, request_id, now_ms)


async def test_far_from_its_limits_a_request_is_admitted_without_redis_and_its_usage_counts(
    redis_server,
):
    redis_server.flush()
    backend = CountingReserves(redis_server.url, deadline=3.0)
    renewals(backend).flush_seconds = 3600
    limits = engine(backend)
    key_limits = {"rpm": 10_000, "tpm": 1_000_000, "budget_usd": 100.0, "budget_period": "daily"}

    def request():  # type: ignore[no-untyped-def]
        return make_request(
            key_limits=key_limits, prompt_tokens=50, max_output_tokens=50, max_cost_micros=2_000
        )

    try:
        first = await limits.admit(request())  # checked in Redis; asks for leases
        await first.settle(80, 1_500)
        checked = backend.checked  # two calls: the budget's counter was seeded first
        for _ in range(4):  # leases are sized by the demand they see between renewals
            await renewals(backend).flush()
            admitted = [await limits.admit(request()) for _ in range(5)]
            assert admitted[0].headers  # the x-ratelimit headers still come
            for admission in admitted:
                await admission.settle(60, 2_000)
        assert backend.checked == checked and limits.stats.admitted_leased == 20
        await renewals(backend).give_back_all()
        found = await counters(redis_server.url)
    finally:
        await limits.aclose()
    # Operators see where requests were checked.
    metrics = GatewayMetrics(set(), set())
    metrics.refresh_limits(limits.stats)
    text = metrics.render()[0].decode()
    for checked, count in (("shared", 1), ("lease", 20), ("fallback", 0)):
        assert f'perpetuo_limits_admissions_total{{checked="{checked}"}} {count}.0' in text
    # Every request's real usage once, and nothing held once the leases are back (the clock
    # stands still: the meters hold everything they were given).
    assert found["usd"]["s"] == 1_500 + 20 * 2_000 and found["usd"]["h"] == 0
    assert found["rpm"]["l"] == 21 * 60_000
    assert found["tpm"]["l"] == (80 + 20 * 60) * 60_000


async def test_two_instances_on_leases_never_pass_a_per_minute_limit(redis_server):
    redis_server.flush()
    clock = Clock()
    backends = [leased(redis_server.url), leased(redis_server.url)]
    engines = [engine(backend, clock) for backend in backends]

    def burst(n: int):  # type: ignore[no-untyped-def]
        return [make_request(key_limits={"rpm": 2_000}) for _ in range(n)]

    try:
        admitted, _ = await admit_all(engines, burst(2))  # one each, checked in Redis
        total = len(admitted)
        for _ in range(12):
            for backend in backends:
                await renewals(backend).flush()
            admitted, refused = await admit_all(engines, burst(250))
            total += len(admitted)
            assert total <= 2_000
            assert {e.code for e in refused} <= {ErrorCode.RATE_LIMIT_REQUESTS}
        assert all(limits.stats.admitted_leased > 0 for limits in engines)
        # Refused early only by room the other instance held: at most a sixteenth of it.
        assert total >= 2_000 - 2_000 // 16
        for backend in backends:
            await renewals(backend).give_back_all()
        admitted, _ = await admit_all(engines, burst(300))
        total += len(admitted)
    finally:
        for limits in engines:
            await limits.aclose()
    assert total == 2_000  # the whole minute, and not one more


async def test_two_instances_on_leases_spend_a_budget_exactly_once(redis_server):
    redis_server.flush()
    clock = Clock()
    backends = [leased(redis_server.url), leased(redis_server.url)]
    engines = [engine(backend, clock) for backend in backends]

    def burst(n: int):  # type: ignore[no-untyped-def]
        return [make_request(key_limits=BUDGET, max_cost_micros=1_000) for _ in range(n)]

    async def spend(n: int) -> int:
        admitted, refused = await admit_all(engines, burst(n))
        assert {e.code for e in refused} <= {ErrorCode.BUDGET_EXCEEDED}
        for admission in admitted:
            await admission.settle(10, 1_000)
        return len(admitted)

    try:
        spent = await spend(2)
        for _ in range(6):
            for backend in backends:
                await renewals(backend).flush()
            spent += await spend(300)
            assert spent <= 1_000
        assert all(limits.stats.admitted_leased > 0 for limits in engines)
        for backend in backends:
            await renewals(backend).give_back_all()
        spent += await spend(100)
        found = await counters(redis_server.url)
    finally:
        for limits in engines:
            await limits.aclose()
    assert spent == 1_000
    assert found["usd"]["s"] == 1_000_000 and found["usd"]["h"] == 0


async def test_one_instance_alone_is_exact_its_own_lease_given_back_before_a_refusal(
    redis_server,
):
    redis_server.flush()
    backend = leased(redis_server.url)
    limits = engine(backend)
    admitted = 0
    try:
        for i in range(400):
            if i % 20 == 1:
                await renewals(backend).flush()
            try:
                await limits.admit(make_request(key_limits={"rpm": 300}))
                admitted += 1
            except Exception as exc:
                assert getattr(exc, "code", None) == ErrorCode.RATE_LIMIT_REQUESTS
    finally:
        await limits.aclose()
    assert limits.stats.admitted_leased > 0
    assert admitted == 300


async def test_a_budget_with_an_alert_is_never_leased(redis_server):
    redis_server.flush()
    backend = CountingReserves(redis_server.url, deadline=3.0)
    renewals(backend).flush_seconds = 3600
    limits = engine(backend)
    alerting = {"budget_usd": 100.0, "budget_soft_usd": 50.0, "rpm": 10_000}
    try:
        for _ in range(5):
            admission = await limits.admit(make_request(key_limits=alerting, max_cost_micros=10))
            await admission.settle(1, 10)
            await renewals(backend).flush()
    finally:
        await limits.aclose()
    assert backend.checked >= 5 and limits.stats.admitted_leased == 0


async def test_an_unused_lease_is_given_back(redis_server):
    redis_server.flush()
    backend = leased(redis_server.url)
    limits = engine(backend)
    try:
        await (await limits.admit(make_request(key_limits=BUDGET, max_cost_micros=1_000))).settle(
            1, 700
        )
        await renewals(backend).flush()
        held = (await counters(redis_server.url))["usd"]["h"]
        assert held > 0  # the lease
        for _ in range(FULL_LOOK_EVERY * (IDLE_LOOKS + 1)):
            await renewals(backend).flush()
        found = await counters(redis_server.url)
        assert found["usd"]["h"] == 0 and found["usd"]["s"] == 700
    finally:
        await limits.aclose()


class LostRenewalReply(RedisBackend):
    """The next `lost` lease renewals reach Redis, and their replies are lost."""

    lost = 0

    async def _send_leases(self, keys, args):  # type: ignore[no-untyped-def]
        reply = await super()._send_leases(keys, args)
        if self.lost:
            self.lost -= 1
            raise BackendUnavailable("TimeoutError: reply lost")
        return reply


async def test_a_renewal_whose_reply_was_lost_is_applied_once(redis_server):
    redis_server.flush()
    backend = LostRenewalReply(redis_server.url, deadline=3.0)
    renewals(backend).flush_seconds = 3600
    limits = engine(backend)

    def request():  # type: ignore[no-untyped-def]
        return make_request(key_limits=BUDGET, max_cost_micros=1_000)

    try:
        await (await limits.admit(request())).settle(1, 500)
        await renewals(backend).flush()
        for _ in range(10):
            await (await limits.admit(request())).settle(1, 500)
        assert limits.stats.admitted_leased == 10
        backend.lost = 1
        await renewals(backend).flush()  # half used: renewed in Redis; the instance cannot know
        # The lease admits nothing until a renewal is answered: this one goes to Redis.
        await (await limits.admit(request())).settle(1, 50)
        assert limits.stats.admitted_leased == 10
        await renewals(backend).flush()  # sent again as it was: a no-op in Redis
        await renewals(backend).give_back_all()
        found = await counters(redis_server.url)
    finally:
        await limits.aclose()
    assert found["usd"]["s"] == 500 + 10 * 500 + 50 and found["usd"]["h"] == 0


@pytest.mark.parametrize("policy", ["open", "closed"])
async def test_while_redis_is_away_leases_step_aside_and_their_usage_arrives_once(
    own_redis, monkeypatch, policy
):
    monkeypatch.setattr(guard_module, "PAUSE_SECONDS", 0.3)
    backend = RedisBackend(own_redis.url)  # the real deadlines
    renewals(backend).flush_seconds = 3600
    limits = LimitEngine(backend, fallback=MemoryBackend(), failure_policy=policy, clock=Clock())

    def request():  # type: ignore[no-untyped-def]
        return make_request(key_limits=BUDGET, max_cost_micros=1_000)

    try:
        await (await limits.admit(request())).settle(1, 500)
        await renewals(backend).flush()
        in_flight = [await limits.admit(request()) for _ in range(5)]
        assert limits.stats.admitted_leased == 5
        assert own_redis.proc is not None
        own_redis.proc.send_signal(signal.SIGSTOP)
        for admission in in_flight:
            await admission.settle(1, 1_000)  # on the lease: no Redis needed
        await renewals(backend).flush()  # half used: its renewal fails, it admits no more
        if policy == "open":
            await (await limits.admit(request())).settle(1, 0)
            assert limits.stats.local_fallbacks == 1  # this instance's own counters did
        else:
            with pytest.raises(GatewayError) as refused:
                await limits.admit(request())
            assert refused.value.status == 503
        assert limits.stats.admitted_leased == 5
        own_redis.proc.send_signal(signal.SIGCONT)
        await renewals(backend).flush()
        await renewals(backend).give_back_all()
        found = await counters(own_redis.url)
    finally:
        await limits.aclose()
    assert found["usd"]["s"] == 500 + 5 * 1_000
    assert not [field for field in found["usd"] if field.startswith("r:lease:")]  # given back
    # Held now: the check that timed out while Redis was paused, run when it resumed (its
    # request was answered by the policy instead); it lapses as any request's hold does.
    assert found["usd"]["h"] == 1_000


async def test_a_lease_with_a_request_in_flight_is_renewed_while_no_other_request_comes(
    redis_server, monkeypatch
):
    redis_server.flush()
    backend = leased(redis_server.url)
    clock = Clock()
    limits = engine(backend, clock)
    try:
        await (await limits.admit(make_request(key_limits=BUDGET, max_cost_micros=1_000))).settle(
            1, 1_000
        )
        await renewals(backend).flush()
        stream = await limits.admit(make_request(key_limits=BUDGET, max_cost_micros=1_000))
        assert limits.stats.admitted_leased == 1
        lapses = await hold_lapses(redis_server.url)
        # Renewed as soon as any time has passed since the last renewal.
        monkeypatch.setattr(leases_module, "RENEWED_FOR_MS", LEASE_MS - SAFETY_MS)
        clock.advance(0.05)  # and no request comes
        await renewals(backend).flush()
        assert await hold_lapses(redis_server.url) >= lapses + 50  # the hold lives on in Redis
        await stream.settle(1, 1_000)
        await renewals(backend).give_back_all()
        found = await counters(redis_server.url)
    finally:
        await limits.aclose()
    assert found["usd"]["s"] == 2_000 and found["usd"]["h"] == 0


async def hold_lapses(url: str) -> int:
    """When this test's one lease hold lapses in Redis (ms)."""
    client = redis.from_url(url)
    try:
        [name] = [n async for n in client.scan_iter(match="*:usd:*:z")]
        [(_, lapses)] = await client.zrange(name, 0, -1, withscores=True)
        return int(lapses)
    finally:
        await client.aclose()


class RequestLog(NoHistory):
    """The request log as seeds read it: the cost it holds so far."""

    cost = 0

    async def usage(self, workspace_id, dim, value, since, until):  # type: ignore[no-untyped-def]
        return 0, self.cost


async def test_usage_on_a_lease_is_not_counted_again_by_a_counter_seeded_after_it(redis_server):
    redis_server.flush()
    clock, log = Clock(), RequestLog()
    backend = leased(redis_server.url)
    limits = engine(backend, clock, history=log)
    other = engine(leased(redis_server.url), clock, history=log)  # another instance

    def request():  # type: ignore[no-untyped-def]
        return make_request(key_limits=BUDGET, max_cost_micros=1_000)

    try:
        await (await limits.admit(request())).settle(1, 500)
        log.cost += 500
        await renewals(backend).flush()
        for _ in range(5):  # on the lease: their usage waits for its next renewal
            await (await limits.admit(request())).settle(1, 300)
            log.cost += 300
        assert limits.stats.admitted_leased == 5
        redis_server.flush()  # Redis comes back empty
        clock.advance(1)
        # The other instance's check creates the counter again, from the log: it has the five.
        await (await other.admit(request())).settle(1, 100)
        await renewals(backend).give_back_all()
        found = await counters(redis_server.url)
    finally:
        await limits.aclose()
        await other.aclose()
    assert found["usd"]["s"] == 500 + 5 * 300 + 100  # each request once
