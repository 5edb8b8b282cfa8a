"""Redis paused (SIGSTOP) or killed and restarted under load, with a gateway that keeps its
keys' limits, budgets and the workspace's credits in Redis.

Fail open: every request is still answered, none waits longer than the Redis deadline plus a
margin. Fail closed: 503 `limits_unavailable` within the same bound. Either way the key
cache keeps serving, admissions go back to Redis on their own, and no settlement is applied
twice: the credit ledger is charged exactly what the request log says was spent, and the
shared budget counter never more (exactly as much when Redis admitted every request)."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from perpetuo.limits.guard import PAUSE_SECONDS
from perpetuo.limits.redis_backend import DEADLINE
from tests.conftest import full_config
from tests.faults.support import (
    ADMIN,
    CHAT,
    Load,
    answered,
    create_key,
    kill_and_restart_redis,
    metric,
    redis_cli,
)
from tests.mocks.server import Fault
from tests.support.gateway import GatewayProcess
from tests.support.services import RedisServer

# The most a request may take while Redis is away: one call's deadline, then a margin for a
# loaded two-core machine. A request that waited for Redis would take the whole outage.
BOUND = DEADLINE + 1.5
OUTAGE = 3.0  # seconds Redis stays paused: longer than BOUND, so a hang cannot pass
SLOW = 1.2  # seconds the upstream takes for requests sent just before a pause
METRICS_SECONDS = 2.5  # the limits engine's metrics are refreshed every 2 s
ADMISSIONS = "perpetuo_limits_admissions_total"
FALLBACK, SHARED, LEASE = (f'{{checked="{c}"}}' for c in ("fallback", "shared", "lease"))
CREDITS_USD = 100.0
KEY_LIMITS = {"rpm": 1_000_000, "tpm": 1_000_000_000, "budget_usd": 50.0, "budget_period": "daily"}


@pytest.fixture
def redis(own_redis: RedisServer) -> RedisServer:
    return own_redis


def start_gateway(
    mocks, redis: RedisServer, tmp_path: Path, policy: str, leases: bool = True
) -> GatewayProcess:
    config, env = full_config(mocks)
    env = {
        **env,
        "PERPETUO_LIMITS_LEASES": str(leases).lower(),
        "PERPETUO_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'store.db'}",
        "PERPETUO_SECRET_KEY": "s" * 40,
        "PERPETUO_REDIS_URL": redis.url,
        "PERPETUO_LIMITS_REDIS_FAILURE": policy,
    }
    gateway = GatewayProcess(config, tmp_path, env=env).start()
    with httpx.Client(base_url=gateway.url, headers=ADMIN, timeout=30) as admin:
        settings = {"budget_usd": 1000.0, "budget_period": "monthly", "credits_required": True}
        admin.patch("/api/workspaces/ws_default", json={"settings": settings}).raise_for_status()
        grant = {"amount_usd": CREDITS_USD, "note": "faults"}
        admin.post("/api/workspaces/ws_default/credits", json=grant).raise_for_status()
    return gateway


def pause(redis: RedisServer) -> float:
    assert redis.proc is not None
    redis.proc.send_signal(signal.SIGSTOP)
    return time.monotonic()


def resume(redis: RedisServer) -> float:
    assert redis.proc is not None
    redis.proc.send_signal(signal.SIGCONT)
    return time.monotonic()


def budget_counter(redis: RedisServer, key_id: str) -> int:
    """What the key's shared budget counter holds as spent (settled micro-USD)."""
    names = redis_cli(redis, "--scan", "--pattern", f"perpetuo:lim:{{ws_default}}:usd:k:{key_id}:*")
    counters = [n for n in names.split() if not n.endswith((":z", ":a"))]
    assert len(counters) == 1, names
    return int(redis_cli(redis, "hget", counters[0], "s") or 0)


def back_on_redis(gateway: GatewayProcess, key: str) -> int:
    """Requests are admitted by the shared counters again, on their own (within a few seconds
    of the gateway's pause after a failure): five sequential requests, none of them checked
    by the instance's own counters. Returns how many requests it sent."""
    headers = {"authorization": f"Bearer {key}"}
    sent, deadline = 0, time.monotonic() + PAUSE_SECONDS + 15
    while True:
        time.sleep(METRICS_SECONDS)  # what came before is counted
        before = metric(gateway, ADMISSIONS, FALLBACK)
        for _ in range(5):
            response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=headers)
            assert response.status_code == 200, response.text
        sent += 5
        time.sleep(METRICS_SECONDS)
        if metric(gateway, ADMISSIONS, FALLBACK) == before:
            assert metric(gateway, ADMISSIONS, SHARED) + metric(gateway, ADMISSIONS, LEASE) > 0
            return sent
        assert time.monotonic() < deadline, "admissions did not go back to Redis"


def ledger_and_logs(gateway: GatewayProcess, tmp_path: Path) -> dict[str, Any]:
    """After a clean stop (which flushes both): the request log and the credit ledger."""
    gateway.stop()
    with sqlite3.connect(tmp_path / "store.db") as db:
        rows, cost = db.execute(
            "select count(*), coalesce(sum(cost_micros), 0) from request_logs"
            " where endpoint = 'chat' and status = 200"
        ).fetchone()
        (charged,) = db.execute(
            "select -coalesce(sum(amount_micros), 0) from credit_ledger where kind = 'usage'"
        ).fetchone()
    return {"rows": rows, "cost": cost, "charged": charged}


def within_bound(outcomes) -> None:
    slowest = max(o.seconds for o in outcomes)
    assert slowest < BOUND, f"a request took {slowest:.2f} s with Redis away"
    assert all(o.status != 0 for o in outcomes)  # every request had an HTTP answer


def test_fail_open_redis_paused_then_killed_and_restarted(mocks, redis, tmp_path):
    gateway = start_gateway(mocks, redis, tmp_path, "open")
    try:
        key = create_key(gateway, limits=KEY_LIMITS)
        load = Load(gateway.url, key["key"]).start()
        time.sleep(0.5)
        stopped = pause(redis)
        time.sleep(OUTAGE / 2)
        # The key cache keeps serving, and a key created meanwhile works at once.
        started = time.monotonic()
        fresh = create_key(gateway, limits=KEY_LIMITS)
        headers = {"authorization": f"Bearer {fresh['key']}"}
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=headers)
        assert reply.status_code == 200 and time.monotonic() - started < 2 * BOUND
        time.sleep(OUTAGE / 2)
        resumed = resume(redis)
        time.sleep(PAUSE_SECONDS + 0.5)
        extra = back_on_redis(gateway, key["key"])
        # Then a crash: Redis comes back empty on the same port, and budgets restart from
        # the usage history.
        kill_and_restart_redis(redis)
        time.sleep(PAUSE_SECONDS + 0.5)
        outcomes = load.stop()
        within_bound(outcomes)
        assert {o.status for o in outcomes} == {200}
        assert len(load.between(stopped + BOUND, resumed)) >= 10  # served all along
        extra += back_on_redis(gateway, key["key"])
        spent_in_redis = budget_counter(redis, key["id"])
        books = ledger_and_logs(gateway, tmp_path)
    finally:
        gateway.stop()
    assert books["rows"] == len(answered(outcomes)) + extra + 1
    # The ledger is charged once per request, whichever counters admitted it.
    assert books["charged"] == books["cost"] > 0
    # Redis counted what it admitted (and what the history held when it came back empty),
    # each request once: never more than was spent. Less when records were still on their
    # way to the request log as Redis, empty, re-read it.
    assert 0 < spent_in_redis <= books["cost"]


def test_fail_open_redis_paused_its_budget_gets_what_was_spent_meanwhile(mocks, redis, tmp_path):
    gateway = start_gateway(mocks, redis, tmp_path, "open")
    try:
        key = create_key(gateway, limits=KEY_LIMITS)
        load = Load(gateway.url, key["key"]).start()
        time.sleep(0.5)
        stopped = pause(redis)
        time.sleep(OUTAGE)
        resumed = resume(redis)
        time.sleep(PAUSE_SECONDS + 0.5)
        extra = back_on_redis(gateway, key["key"])
        outcomes = load.stop()
        books = ledger_and_logs(gateway, tmp_path)  # a clean stop sends what is still queued
        spent_in_redis = budget_counter(redis, key["id"])
    finally:
        gateway.stop()
    within_bound(outcomes)
    assert len(load.between(stopped + BOUND, resumed)) >= 10  # admitted locally meanwhile
    assert books["rows"] == len(answered(outcomes)) + extra
    assert books["charged"] == books["cost"] > 0
    # What this instance admitted by its own counters while Redis was paused was forwarded
    # to Redis's budget when it resumed, once per request: exactly what was spent.
    assert spent_in_redis == books["cost"]


def test_fail_closed_redis_paused_answers_503_then_recovers(mocks, redis, tmp_path):
    # Every request checked in Redis itself, so that requests admitted there end while the
    # gateway leaves Redis alone (on leases they would settle in process). Leases under
    # either policy: tests/limits/test_leases.py.
    gateway = start_gateway(mocks, redis, tmp_path, "closed", leases=False)
    try:
        key = create_key(gateway, limits=KEY_LIMITS)
        load = Load(gateway.url, key["key"]).start()
        time.sleep(0.5)
        # Requests admitted just before the pause end after it, while the gateway leaves
        # Redis alone after its first timeout: their settlements must not be lost.
        mocks["openai"].default_fault = Fault(delay=SLOW)
        time.sleep(0.2)
        stopped = pause(redis)
        time.sleep(0.1)
        mocks["openai"].default_fault = None
        refusal = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=CHAT,
            headers={"authorization": f"Bearer {key['key']}"},
            timeout=30,
        )
        avoided = time.monotonic()  # Redis has failed: the gateway leaves it alone a while
        time.sleep(max(0.0, stopped + OUTAGE + 0.5 - time.monotonic()))
        resumed = resume(redis)
        time.sleep(PAUSE_SECONDS + 1.0)
        outcomes = load.stop()
        within_bound(outcomes)
        assert {o.status for o in outcomes} == {200, 503}
        # (a call sent less than its deadline before Redis resumes may well be answered)
        during = load.between(stopped + BOUND, resumed - DEADLINE - 0.2)
        assert during and {(o.status, o.code) for o in during} == {(503, "limits_unavailable")}
        after = load.between(resumed + PAUSE_SECONDS + 0.3, time.monotonic())
        assert after and {o.status for o in after} == {200}
        extra = back_on_redis(gateway, key["key"])
        books = ledger_and_logs(gateway, tmp_path)  # a clean stop: every settlement is sent
        spent_in_redis = budget_counter(redis, key["id"])
    finally:
        gateway.stop()
    assert books["rows"] == len(answered(outcomes)) + extra
    assert books["charged"] == books["cost"] > 0
    slow = [o for o in outcomes if o.status == 200 and o.started < stopped and o.ended > avoided]
    assert slow  # some requests admitted in Redis ended while the gateway left it alone
    # The refusal clients see: an OpenAI-style error they may retry after a second.
    assert refusal.status_code == 503 and refusal.headers["retry-after"] == "1"
    error = refusal.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "limits_unavailable" and error["type"] == "service_unavailable_error"
    # Every answered request was admitted in Redis, and settled there once: one that Redis
    # received while paused when it resumed (sent again, a no-op), one made while the
    # gateway left Redis alone when the gateway went back to it. Exactly what was spent.
    assert spent_in_redis == books["cost"]
