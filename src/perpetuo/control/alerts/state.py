"""Each alert's life, in the database: ok -> pending -> firing -> ok.

Every transition that sends something is a conditional UPDATE whose WHERE clause is the
transition's precondition; only the instance whose update changed the row (rowcount 1)
records the event, in the same transaction. PostgreSQL re-checks the WHERE clause after a
concurrent writer commits and SQLite serialises writers, so two instances that see the same
condition at the same moment still send one notice.

Instances only ever report a condition they see as true (`observe`); an alert resolves when
nobody has reported it for `grace` seconds (`sweep`), so one instance that cannot see a
deployment's open circuit never resolves what another instance sees.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from perpetuo.control.alerts.payloads import FIRING, RESOLVED, event_payload
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.alert_tables import alert_channels, alert_deliveries, alert_events, alert_states
from perpetuo.store.ids import new_id
from perpetuo.store.timeutil import iso, utcnow


@dataclass(frozen=True)
class Observation:
    """A condition seen true now, for one subject (a deployment, a key, the workspace)."""

    subject: str
    summary: str
    value: float | None = None
    threshold: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    resolve_at: dt.datetime | None = None  # resolves then whatever is observed (budgets)


async def observe(
    conn: AsyncConnection, rule: Any, seen: Observation, now: dt.datetime
) -> str | None:
    """Record that `rule`'s condition holds for `seen.subject`; the event id this instance
    must send (firing, or a re-notification), or None."""
    s = alert_states.c
    await _ensure(conn, rule, seen.subject, now)
    mine = and_(s.rule_id == rule.id, s.subject == seen.subject)
    await conn.execute(
        update(alert_states)
        .where(mine, s.status == "ok")
        .values(status="pending", pending_since=now)
    )
    await conn.execute(
        update(alert_states)
        .where(mine)
        .values(
            last_true_at=now,
            value=seen.value,
            summary=seen.summary[:500],
            detail=seen.detail,
            resolve_at=seen.resolve_at,
        )
    )
    due = now - dt.timedelta(minutes=rule.for_minutes or 0)
    fired = await conn.execute(
        update(alert_states)
        .where(mine, s.status == "pending", s.pending_since <= due)
        .values(status="firing", fired_at=now, notified_at=now, resolved_at=None)
    )
    if fired.rowcount == 1:
        return await _event(conn, rule, mine, FIRING, now)
    if rule.renotify_minutes:
        again = now - dt.timedelta(minutes=rule.renotify_minutes)
        renotified = await conn.execute(
            update(alert_states)
            .where(mine, s.status == "firing", s.notified_at <= again)
            .values(notified_at=now)
        )
        if renotified.rowcount == 1:
            return await _event(conn, rule, mine, FIRING, now, renotified=True)
    return None


async def sweep(
    conn: AsyncConnection, rules: dict[str, Any], now: dt.datetime, grace: float
) -> list[str]:
    """Resolve what nobody reported for `grace` seconds (or whose `resolve_at` passed), for
    the given rules; the ids of the resolved events this instance must send."""
    s = alert_states.c
    stale = or_(
        and_(s.resolve_at.is_(None), s.last_true_at <= now - dt.timedelta(seconds=grace)),
        s.resolve_at <= now,
    )
    rows = (
        await conn.execute(
            select(s.id, s.rule_id, s.status).where(
                s.rule_id.in_(list(rules)), s.status.in_(("pending", "firing")), stale
            )
        )
    ).all()
    sent = []
    for row in rows:
        mine = s.id == row.id
        if row.status == "pending":
            await conn.execute(
                update(alert_states)
                .where(mine, s.status == "pending", stale)
                .values(status="ok", pending_since=None)
            )
            continue
        resolved = await conn.execute(
            update(alert_states)
            .where(mine, s.status == "firing", stale)
            .values(status="ok", pending_since=None, resolved_at=now)
        )
        if resolved.rowcount == 1:
            sent.append(await _event(conn, rules[row.rule_id], mine, RESOLVED, now))
    return sent


async def _ensure(conn: AsyncConnection, rule: Any, subject: str, now: dt.datetime) -> None:
    values = {
        "id": new_id("alst"),
        "rule_id": rule.id,
        "workspace_id": rule.workspace_id,
        "subject": subject[:300],
        "status": "ok",
        "created_at": now,
    }
    await conn.execute(
        conn.insert(alert_states)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["rule_id", "subject"])
    )


async def _event(
    conn: AsyncConnection,
    rule: Any,
    mine: Any,
    event_type: str,
    now: dt.datetime,
    *,
    renotified: bool = False,
) -> str | None:
    state = (await conn.execute(select(alert_states).where(mine))).one()
    alert = {
        "rule_id": rule.id,
        "rule_name": rule.name,
        "kind": rule.kind,
        "subject": state.subject,
        "status": "firing" if event_type == FIRING else "resolved",
        "summary": state.summary or state.subject,
        "value": state.value,
        "threshold": (state.detail or {}).get("threshold"),
        "details": state.detail or {},
        "fired_at": iso(state.fired_at),
        "resolved_at": iso(state.resolved_at),
        "renotification": renotified,
    }
    return await record_event(
        conn,
        rule.workspace_id,
        rule.id,
        state.id,
        event_type,
        alert,
        now,
        channel_ids=list(rule.channel_ids or ()),
    )


async def record_event(
    conn: AsyncConnection,
    workspace_id: str | None,
    rule_id: str | None,
    state_id: str | None,
    event_type: str,
    alert: dict[str, Any],
    now: dt.datetime,
    *,
    channel_ids: list[str],
    extra: list[str] = (),  # type: ignore[assignment]
    once_as: str | None = None,
) -> str | None:
    """Insert the event and one pending delivery per enabled channel of its scope (and per
    `extra` kind, e.g. the workspace's legacy alert_webhook_url); the event id. `once_as`:
    the event's id, derived from what the event is about, so it is recorded once: None, and
    nothing to deliver, when an event of that id exists."""
    event_id = once_as or new_id("alev")
    payload = event_payload(event_id, event_type, iso(now) or "", workspace_id, alert)
    recorded = await conn.execute(
        conn.insert(alert_events)
        .values(
            id=event_id,
            workspace_id=workspace_id,
            rule_id=rule_id,
            state_id=state_id,
            type=event_type,
            kind=alert["kind"],
            subject=alert["subject"][:300],
            summary=alert["summary"][:500],
            payload=payload,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    if recorded.rowcount == 0:
        return None  # recorded before, by this instance or another
    c = alert_channels.c
    channels = []
    if channel_ids:
        scope = c.workspace_id.is_(None) if workspace_id is None else c.workspace_id == workspace_id
        channels = (
            await conn.execute(
                select(c.id, c.kind).where(c.id.in_(channel_ids), scope, c.enabled.is_(True))
            )
        ).all()
    targets = [(row.id, row.kind) for row in channels] + [(None, kind) for kind in extra]
    for channel_id, kind in targets:
        await conn.execute(
            insert(alert_deliveries).values(
                id=new_id("aldl"),
                event_id=event_id,
                workspace_id=workspace_id,
                channel_id=channel_id,
                channel_kind=kind,
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),  # the deliverer's clock: due at once
                created_at=now,
            )
        )
    return event_id
