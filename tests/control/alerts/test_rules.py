"""Each kind of rule fires once while its condition holds and sends a recovery notice when
it clears, with the time given to the evaluator (no waiting on the wall clock)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import update

from perpetuo.control.alerts.budget import raise_budget_alert
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from perpetuo.store.schema import api_keys, workspaces
from perpetuo.store.timeutil import utcnow
from tests.control.alerts.conftest import history, make_channel, make_rule
from tests.support.admin_api import MASTER
from tests.support.people import make_workspace

MINUTE = dt.timedelta(minutes=1)


async def _workspace(api, receiver) -> tuple[str, str, str]:
    """A workspace with a webhook channel to the receiver: (id, API base, channel id)."""
    ws = await make_workspace(api.plane, {})
    base = f"/api/workspaces/{ws}"
    channel = await make_channel(
        api, base, {"name": "hook", "kind": "webhook", "url": receiver.url}
    )
    return ws, base, channel["id"]


async def _sent(api) -> list[dict[str, Any]]:
    service = api.app.gateway.alerts
    while await service.deliver_due():
        pass
    return []


def _types(receiver) -> list[tuple[str, str]]:
    return [(b["type"], b["alert"]["subject"]) for b in receiver.bodies()]


async def test_a_key_expiring_fires_once_and_recovers_when_revoked(api, receiver):
    service = api.app.gateway.alerts
    _ws, base, channel = await _workspace(api, receiver)
    key = (await api.http.post(f"{base}/keys", headers=MASTER, json={"name": "ci"})).json()["data"]
    later = (await api.http.post(f"{base}/keys", headers=MASTER, json={"name": "far"})).json()
    now = utcnow()
    async with api.plane.db.begin() as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key["id"])
            .values(expires_at=now + dt.timedelta(days=3))
        )
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == later["data"]["id"])
            .values(expires_at=now + dt.timedelta(days=30))
        )
    await make_rule(
        api,
        base,
        {"name": "keys", "kind": "key_expiring", "params": {"days": 7}, "channel_ids": [channel]},
    )
    assert len(await service.evaluate_once(now)) == 1
    for minutes in (1, 2, 3):  # still true: not sent again
        assert await service.evaluate_once(now + minutes * MINUTE) == []
    await _sent(api)
    assert _types(receiver) == [("alert.firing", key["id"])]
    firing = receiver.bodies()[0]["alert"]
    assert firing["kind"] == "key_expiring" and "ci" in firing["summary"]

    revoked = await api.http.post(f"{base}/keys/{key['id']}/revoke", headers=MASTER)
    assert revoked.status_code == 200
    assert await service.evaluate_once(now + 4 * MINUTE) == []  # within the grace period
    assert len(await service.evaluate_once(now + 10 * MINUTE)) == 1
    assert await service.evaluate_once(now + 11 * MINUTE) == []
    await _sent(api)
    assert _types(receiver) == [("alert.firing", key["id"]), ("alert.resolved", key["id"])]
    assert [e["type"] for e in await history(api, base)] == ["alert.resolved", "alert.firing"]


async def test_spend_over_the_hours_usual_fires_and_clears_the_next_hour(api, receiver):
    service = api.app.gateway.alerts
    ws, base, channel = await _workspace(api, receiver)
    now = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
    records = [
        _record(ws, now - dt.timedelta(days=day, minutes=20), cost=1_000_000, n=day)
        for day in range(1, 8)
    ]  # $1 in that hour on each of the 7 days before
    records.append(_record(ws, now - dt.timedelta(days=1, hours=3), cost=90_000_000, n=99))
    await write_batch(api.plane.db, records)
    await make_rule(
        api,
        base,
        {
            "name": "spend",
            "kind": "spend_anomaly",
            "params": {"factor": 3, "min_usd": 2, "lookback_days": 7},
            "channel_ids": [channel],
        },
    )
    await write_batch(api.plane.db, [_record(ws, now - 10 * MINUTE, cost=2_900_000, n=100)])
    assert await service.evaluate_once(now) == []  # $2.90 < 3 x $1
    await write_batch(api.plane.db, [_record(ws, now - 5 * MINUTE, cost=200_000, n=101)])
    assert len(await service.evaluate_once(now)) == 1  # $3.10
    assert await service.evaluate_once(now + 10 * MINUTE) == []
    assert await service.evaluate_once(now + 29 * MINUTE) == []  # 15:59, still over
    next_hour = now + dt.timedelta(minutes=31)  # 16:01, nothing spent yet this hour
    assert await service.evaluate_once(next_hour) == []  # within the grace period
    assert len(await service.evaluate_once(next_hour + 3 * MINUTE)) == 1
    await _sent(api)
    assert _types(receiver) == [("alert.firing", "spend"), ("alert.resolved", "spend")]
    details = receiver.bodies()[0]["alert"]["details"]
    assert (details["spent_usd"], details["average_usd"], details["threshold"]) == (3.1, 1.0, 3.0)


async def test_a_low_credit_balance_is_renotified_then_resolved_by_a_grant(api, receiver):
    service = api.app.gateway.alerts
    _ws, base, channel = await _workspace(api, receiver)
    await make_rule(
        api,
        base,
        {
            "name": "credits",
            "kind": "credit_balance_below",
            "params": {"threshold_usd": 5},
            "channel_ids": [channel],
            "renotify_minutes": 30,
        },
    )
    now = utcnow()
    assert len(await service.evaluate_once(now)) == 1
    assert await service.evaluate_once(now + 29 * MINUTE) == []
    assert len(await service.evaluate_once(now + 31 * MINUTE)) == 1  # re-notified
    granted = await api.http.post(
        f"{base}/credits", headers=MASTER, json={"amount_usd": 10, "note": "top-up"}
    )
    assert granted.status_code in (200, 201), granted.text
    assert len(await service.evaluate_once(now + 40 * MINUTE)) == 1  # resolved
    await _sent(api)
    bodies = receiver.bodies()
    assert [b["type"] for b in bodies] == ["alert.firing", "alert.firing", "alert.resolved"]
    assert [b["alert"]["renotification"] for b in bodies[:2]] == [False, True]


async def test_error_rate_and_latency_from_the_request_log(api, receiver):
    service = api.app.gateway.alerts
    ws, base, channel = await _workspace(api, receiver)
    now = utcnow()
    records = [
        _record(
            ws,
            now - dt.timedelta(seconds=10 + i),
            status=502 if i % 3 == 0 else 200,
            latency=100.0 + i * 10,
            n=i,
        )
        for i in range(30)
    ]  # 10 of 30 failed; latencies 100..390 ms: p95 is 380
    await write_batch(api.plane.db, records)
    for name, params in (
        ("errors", {"condition": "error_rate", "threshold": 0.3}),
        ("slow", {"condition": "p95_latency", "threshold": 380}),
        ("very slow", {"condition": "p95_latency", "threshold": 381}),
        ("few", {"condition": "error_rate", "threshold": 0.1, "min_requests": 31}),
    ):
        await make_rule(
            api,
            base,
            {
                "name": name,
                "kind": "deployment_degraded",
                "params": params,
                "channel_ids": [channel],
            },
        )
    assert len(await service.evaluate_once(now)) == 2
    await _sent(api)
    found = {b["alert"]["rule_name"]: b["alert"] for b in receiver.bodies()}
    assert set(found) == {"errors", "slow"}
    assert found["errors"]["subject"] == "cred_x/gpt-x" and found["errors"]["value"] == 0.3333
    assert found["slow"]["value"] == 380
    # Ten minutes later the window holds nothing: both recover.
    assert len(await service.evaluate_once(now + 10 * MINUTE)) == 2


async def test_a_budget_threshold_fires_once_per_period_and_clears_when_it_ends(api, receiver):
    service = api.app.gateway.alerts
    ws, base, channel = await _workspace(api, receiver)
    await make_rule(
        api, base, {"name": "budget", "kind": "budget_threshold", "channel_ids": [channel]}
    )
    now = utcnow()
    event = _budget_event(ws, now)
    assert len(await raise_budget_alert(api.plane, event, now)) == 1
    assert await raise_budget_alert(api.plane, event, now) == []  # another instance's copy
    assert await service.evaluate_once(now + 30 * MINUTE) == []  # the period goes on
    assert len(await service.evaluate_once(now + dt.timedelta(hours=2))) == 1  # it ended
    await _sent(api)
    assert _types(receiver) == [
        ("alert.firing", f"workspace:{ws}"),
        ("alert.resolved", f"workspace:{ws}"),
    ]
    assert receiver.bodies()[0]["alert"]["details"]["threshold_usd"] == 50.0


async def test_without_budget_rules_the_workspace_webhook_gets_the_old_body(api, receiver):
    ws = await _legacy_workspace(api, receiver)
    event = _budget_event(ws, utcnow())
    assert len(await raise_budget_alert(api.plane, event)) == 1
    await _sent(api)
    assert receiver.bodies() == [event]  # as budget alerts were always sent
    assert "x-perpetuo-signature" not in receiver.received[0]["headers"]


async def test_without_budget_rules_a_crossing_reported_twice_is_sent_once(api, receiver):
    # An instance that counted alone while Redis was away reports the crossing, then Redis
    # does when that usage is forwarded to it: the same budget and period, later figures.
    ws = await _legacy_workspace(api, receiver)
    now = utcnow()
    local = _budget_event(ws, now)
    from_redis = {**local, "spent_usd": 61.0, "at": (now + MINUTE).isoformat()}
    raised = await asyncio.gather(
        raise_budget_alert(api.plane, local), raise_budget_alert(api.plane, from_redis)
    )
    assert sum(len(r) for r in raised) == 1
    next_period = {
        **local,
        "period_start": (now + dt.timedelta(hours=1)).isoformat(),
        "period_end": (now + dt.timedelta(hours=25)).isoformat(),
    }
    assert len(await raise_budget_alert(api.plane, next_period)) == 1  # a new period, told
    await _sent(api)
    assert [b["period_start"] for b in receiver.bodies()] == [
        local["period_start"],
        next_period["period_start"],
    ]


async def _legacy_workspace(api, receiver) -> str:
    """A workspace without alert rules, with the old `alert_webhook_url` setting."""
    ws = await make_workspace(api.plane, {})
    async with api.plane.db.begin() as conn:
        await conn.execute(
            update(workspaces)
            .where(workspaces.c.id == ws)
            .values(settings={"alert_webhook_url": receiver.url})
        )
    return ws


def _budget_event(ws: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "type": "budget.soft_threshold_reached",
        "workspace_id": ws,
        "scope": "workspace",
        "scope_id": ws,
        "key_id": None,
        "period": "daily",
        "period_start": (now - dt.timedelta(hours=1)).isoformat(),
        "period_end": (now + dt.timedelta(hours=1)).isoformat(),
        "threshold_usd": 50.0,
        "budget_usd": 80.0,
        "spent_usd": 50.5,
        "at": now.isoformat(),
    }


def _record(
    ws: str, at: dt.datetime, *, cost: int = 0, status: int = 200, latency: float = 50.0, n: int
) -> RequestRecord:
    return RequestRecord(
        id=f"req_{ws}_{n}_{at.timestamp()}",
        workspace_id=ws,
        created_at=at.timestamp(),
        endpoint="chat",
        status=status,
        alias="a",
        provider="cred_x",
        model="gpt-x",
        cost_micros=cost,
        latency_ms=latency,
    )
