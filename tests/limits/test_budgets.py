"""USD budgets: reserve the maximum cost, settle the actual; exact under concurrency, never
overspent; a soft threshold raises exactly one alert per period (delivery is the alert path's:
tests/control/alerts)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from perpetuo.limits import LimitEngine, WorkspaceLimits
from perpetuo.schema.errors import ErrorCode, GatewayError
from tests.limits.support import Clock, admit_all, at, attempt, engine, make_request

X = 10_000  # micro-USD: the most one request may cost


async def test_200_concurrent_requests_against_50_x_admit_exactly_50(backends):
    clock = Clock()
    engines = [engine(backends(), clock), engine(backends(), clock)]
    key = {"budget_usd": 50 * X / 1_000_000, "budget_period": "daily"}
    batch = [make_request(key_limits=key, max_cost_micros=X) for _ in range(200)]
    admitted, refused = await admit_all(engines, batch)
    assert (len(admitted), len(refused)) == (50, 150)
    assert {(e.status, e.code) for e in refused} == {(402, ErrorCode.BUDGET_EXCEEDED)}
    assert "budget of $0.50 per UTC day" in refused[0].message
    assert "retry-after" not in refused[0].headers
    # They cost half the maximum: half the budget comes back, room for 25 more.
    await asyncio.gather(*(a.settle(10, X // 2) for a in admitted))
    admitted, _ = await admit_all(
        engines, [make_request(key_limits=key, max_cost_micros=X) for _ in range(200)]
    )
    assert len(admitted) == 25
    await asyncio.gather(*(a.settle(10, X) for a in admitted))
    admitted, _ = await admit_all(engines, [make_request(key_limits=key, max_cost_micros=1)])
    assert not admitted  # spent exactly the budget: even the smallest request is refused


async def test_no_overspend_under_concurrent_traffic(backends):
    clock = Clock()
    engines = [engine(backends(), clock), engine(backends(), clock)]
    workspace = WorkspaceLimits(budget_usd=0.3, budget_period="total")
    keys = [{"budget_usd": 0.2}, {"budget_usd": 0.25}]
    rng = random.Random(3)
    spent = {"key_0": 0, "key_1": 0}

    async def client(n: int) -> None:
        key_id = f"key_{n % 2}"
        for _ in range(40):
            maximum = rng.randint(1, 3 * X)
            outcome = await attempt(
                engines[n % 2].admit(
                    make_request(
                        key_id=key_id,
                        key_limits=keys[n % 2],
                        workspace=workspace,
                        max_cost_micros=maximum,
                    )
                )
            )
            if isinstance(outcome, GatewayError):
                assert outcome.code == ErrorCode.BUDGET_EXCEEDED
                continue
            await asyncio.sleep(0)
            actual = rng.randint(0, maximum)  # never more than the reserved maximum
            spent[key_id] += actual
            await outcome.settle(1, actual)

    await asyncio.gather(*(client(n) for n in range(40)))
    assert spent["key_0"] <= 200_000 and spent["key_1"] <= 250_000
    assert sum(spent.values()) <= 300_000
    assert sum(spent.values()) > 250_000  # the budget was really used up, not just refused


def alerts_of(*engines: LimitEngine) -> list[dict[str, Any]]:
    """Every budget alert the engines raise (what the alert path is told)."""
    raised: list[dict[str, Any]] = []
    for limits in engines:
        limits.alerts.listeners.append(raised.append)
    return raised


async def test_soft_threshold_raises_one_alert_per_period(backends):
    clock = at("2025-05-20T10:00:00")
    engines = [engine(backends(), clock), engine(backends(), clock)]
    received = alerts_of(*engines)
    workspace = WorkspaceLimits()
    key = {"budget_usd": 1.0, "budget_soft_usd": 0.5}  # monthly by default

    async def spend(n: int, cost: int) -> None:
        admission = await engines[n % 2].admit(
            make_request(key_limits=key, workspace=workspace, max_cost_micros=cost)
        )
        await admission.settle(1, cost)

    try:
        await asyncio.gather(*(spend(n, 40_000) for n in range(12)))  # $0.48: below
        assert received == []
        await asyncio.gather(*(spend(n, 40_000) for n in range(10)))  # crosses $0.50
        assert len(received) == 1
        event = received[0]
        assert event["type"] == "budget.soft_threshold_reached"
        assert (event["scope"], event["key_id"], event["workspace_id"]) == ("key", "key_1", "ws_1")
        assert (event["period"], event["threshold_usd"], event["budget_usd"]) == (
            "monthly",
            0.5,
            1.0,
        )
        assert event["period_start"].startswith("2025-05-01T00:00:00")
        assert event["period_end"].startswith("2025-06-01T00:00:00")
        assert 0.5 <= event["spent_usd"] <= 0.88
        assert sum(e.stats.alerts_fired for e in engines) == 1
        clock.advance(15 * 24 * 3600)  # June: a new period, a new alert
        await asyncio.gather(*(spend(n, 100_000) for n in range(6)))
        assert len(received) == 2 and received[1]["period_start"].startswith("2025-06-01")
    finally:
        for limits in engines:
            await limits.aclose()


async def test_a_failing_listener_never_fails_the_request(backends):
    limits = engine(backends())

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("the alert path is down")

    limits.alerts.listeners.append(broken)
    try:
        admission = await limits.admit(
            make_request(workspace=WorkspaceLimits(budget_soft_usd=0.01), max_cost_micros=20_000)
        )
        await admission.settle(1, 20_000)
        assert (limits.stats.alerts_fired, limits.stats.alerts_failed) == (1, 1)
    finally:
        await limits.aclose()
