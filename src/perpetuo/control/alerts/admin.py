"""Alert rules and the alert history, for the admin API and the dashboard.

`workspace_id=None` is the platform's scope (platform administrators only); a workspace's
rules are read by any of its members and changed by its admins. Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select, update

from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.alerts import rules as kinds
from perpetuo.control.errors import forbidden, invalid, not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.alert_tables import (
    alert_channels,
    alert_deliveries,
    alert_events,
    alert_rules,
    alert_states,
)
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.timeutil import iso, utcnow

Minutes = Annotated[int, Field(ge=0, le=7 * 24 * 60)]


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: str = Field(description=f"One of: {', '.join(kinds.KINDS)}")
    params: dict[str, Any] = Field(default_factory=dict, description="Per kind; see docs")
    channel_ids: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=20
    )
    enabled: bool = True
    for_minutes: Minutes = Field(default=0, description="The condition must hold this long")
    renotify_minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] | None = Field(
        default=None, description="Send a firing alert again this often; default: never"
    )


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    params: dict[str, Any] | None = None
    channel_ids: list[Annotated[str, Field(max_length=40)]] | None = Field(
        default=None, max_length=20
    )
    enabled: bool | None = None
    for_minutes: Minutes | None = None
    renotify_minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] | None = None


def rule_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "alert_rule",
        "workspace_id": row.workspace_id,
        "name": row.name,
        "kind": row.kind,
        "params": row.params,
        "channel_ids": list(row.channel_ids or ()),
        "enabled": bool(row.enabled),
        "for_minutes": row.for_minutes,
        "renotify_minutes": row.renotify_minutes,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def event_view(row: Any, deliveries: list[Any] | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "alert_event",
        "workspace_id": row.workspace_id,
        "rule_id": row.rule_id,
        "type": row.type,
        "kind": row.kind,
        "subject": row.subject,
        "summary": row.summary,
        "payload": row.payload,
        "created_at": iso(row.created_at),
        "deliveries": [
            {
                "id": d.id,
                "channel_id": d.channel_id,
                "channel_kind": d.channel_kind,
                "status": d.status,
                "attempts": d.attempts,
                "response_status": d.response_status,
                "last_error": d.last_error,
                "next_attempt_at": iso(d.next_attempt_at) if d.status == "pending" else None,
                "delivered_at": iso(d.delivered_at),
            }
            for d in deliveries or ()
        ],
    }


async def authorize(
    conn: AsyncConnection, actor: Actor, workspace_id: str | None, write: bool
) -> None:
    """Platform scope: platform administrators; a workspace: members read, admins write."""
    if workspace_id is None:
        if not actor.is_superadmin:
            raise forbidden("Only platform administrators manage platform alerts.")
        return
    await require(conn, actor, workspace_id, "alerts.write" if write else "alerts.read")


def scoped(table: Any, workspace_id: str | None) -> Any:
    column = table.c.workspace_id
    return column.is_(None) if workspace_id is None else column == workspace_id


async def _check_channels(conn: AsyncConnection, workspace_id: str | None, ids: list[str]) -> None:
    if not ids:
        return
    found = set(
        await conn.scalars(
            select(alert_channels.c.id).where(
                alert_channels.c.id.in_(ids), scoped(alert_channels, workspace_id)
            )
        )
    )
    if missing := [i for i in ids if i not in found]:
        raise invalid(f"channel_ids: no such alert channel: {', '.join(missing)}.", "channel_ids")


def _params(kind: str, params: dict[str, Any], workspace_id: str | None) -> dict[str, Any]:
    try:
        return kinds.parse_params(kind, params, platform=workspace_id is None)
    except kinds.KindError as exc:
        raise invalid(f"kind: {exc}.", "kind") from None
    except ValueError as exc:
        raise invalid(f"params: {exc}.", "params") from None


async def _rule(conn: AsyncConnection, workspace_id: str | None, rule_id: str) -> Any:
    row = (
        await conn.execute(
            select(alert_rules).where(
                alert_rules.c.id == rule_id, scoped(alert_rules, workspace_id)
            )
        )
    ).first()
    if row is None:
        raise not_found("Alert rule")
    return row


async def create_rule(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, spec: RuleCreate
) -> dict[str, Any]:
    rule_id, now = new_id("alrt"), utcnow()
    async with plane.db.begin() as conn:
        await authorize(conn, actor, workspace_id, write=True)  # before judging the body
        params = _params(spec.kind, spec.params, workspace_id)
        await _check_channels(conn, workspace_id, spec.channel_ids)
        await conn.execute(
            insert(alert_rules).values(
                id=rule_id,
                workspace_id=workspace_id,
                name=spec.name,
                kind=spec.kind,
                params=params,
                channel_ids=list(dict.fromkeys(spec.channel_ids)),
                enabled=spec.enabled,
                for_minutes=spec.for_minutes,
                renotify_minutes=spec.renotify_minutes,
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
            )
        )
        view = rule_view(await _rule(conn, workspace_id, rule_id))
        await audit.record(
            conn,
            actor,
            "alert_rule.create",
            workspace_id=workspace_id,
            target_type="alert_rule",
            target_id=rule_id,
            after=view,
        )
    return view


async def list_rules(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await authorize(conn, actor, workspace_id, write=False)
        query = newest_first(
            select(alert_rules).where(scoped(alert_rules, workspace_id)), alert_rules, cursor, limit
        )
        return to_page((await conn.execute(query)).all(), limit)


async def get_rule(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, rule_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await authorize(conn, actor, workspace_id, write=False)
        return rule_view(await _rule(conn, workspace_id, rule_id))


async def update_rule(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, rule_id: str, spec: RuleUpdate
) -> dict[str, Any]:
    changes = spec.model_dump(exclude_unset=True)
    async with plane.db.begin() as conn:
        await authorize(conn, actor, workspace_id, write=True)
        row = await _rule(conn, workspace_id, rule_id)
        if changes.get("params") is not None:
            changes["params"] = _params(row.kind, changes["params"], workspace_id)
        if changes.get("channel_ids") is not None:
            await _check_channels(conn, workspace_id, changes["channel_ids"])
        changes = {k: v for k, v in changes.items() if v is not None or k == "renotify_minutes"}
        await conn.execute(
            update(alert_rules)
            .where(alert_rules.c.id == rule_id)
            .values(**changes, updated_at=utcnow())
        )
        if {"params", "enabled", "for_minutes"} & set(changes):
            # A changed condition starts afresh: its alerts are judged again from now on.
            await conn.execute(delete(alert_states).where(alert_states.c.rule_id == rule_id))
        view = rule_view(await _rule(conn, workspace_id, rule_id))
        await audit.record(
            conn,
            actor,
            "alert_rule.update",
            workspace_id=workspace_id,
            target_type="alert_rule",
            target_id=rule_id,
            before=rule_view(row),
            after=view,
        )
    return view


async def delete_rule(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, rule_id: str
) -> None:
    async with plane.db.begin() as conn:
        await authorize(conn, actor, workspace_id, write=True)
        row = await _rule(conn, workspace_id, rule_id)
        await conn.execute(delete(alert_states).where(alert_states.c.rule_id == rule_id))
        await conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
        await audit.record(
            conn,
            actor,
            "alert_rule.delete",
            workspace_id=workspace_id,
            target_type="alert_rule",
            target_id=rule_id,
            before=rule_view(row),
        )


async def history(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Events sent, newest first, each with its deliveries' outcome."""
    async with plane.db.connect() as conn:
        await authorize(conn, actor, workspace_id, write=False)
        query = newest_first(
            select(alert_events).where(scoped(alert_events, workspace_id)),
            alert_events,
            cursor,
            limit,
        )
        result = to_page((await conn.execute(query)).all(), limit)
        ids = [row.id for row in result.rows]
        deliveries: dict[str, list[Any]] = {}
        if ids:
            rows = await conn.execute(
                select(alert_deliveries)
                .where(alert_deliveries.c.event_id.in_(ids))
                .order_by(alert_deliveries.c.created_at)
            )
            for d in rows:
                deliveries.setdefault(d.event_id, []).append(d)
    return {
        "data": [event_view(row, deliveries.get(row.id)) for row in result.rows],
        "next_cursor": result.next_cursor,
        "has_more": result.has_more,
    }


async def active(db: Any, workspace_id: str | None) -> list[dict[str, Any]]:
    """Alerts firing now in the scope, for the dashboard (callers check access)."""
    s, r = alert_states.c, alert_rules.c
    async with db.connect() as conn:
        rows = await conn.execute(
            select(s.rule_id, s.subject, s.summary, s.fired_at, s.value, r.name, r.kind)
            .join(alert_rules, alert_rules.c.id == s.rule_id)
            .where(s.status == "firing", scoped(alert_states, workspace_id))
            .order_by(s.fired_at.desc())
            .limit(200)
        )
        return [
            {
                "rule_id": row.rule_id,
                "rule_name": row.name,
                "kind": row.kind,
                "subject": row.subject,
                "summary": row.summary,
                "fired_at": iso(row.fired_at),
            }
            for row in rows
        ]
