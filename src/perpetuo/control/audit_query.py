"""Reading the audit trail: a workspace's entries (its admins) and the platform's (super-admins).

Newest first, filtered by action, actor, target and time, paged by cursor. The trail is
append-only (the database refuses UPDATE and DELETE on it); nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select

from perpetuo.control.access import require
from perpetuo.control.actor import Actor
from perpetuo.control.errors import invalid
from perpetuo.control.plane import ControlPlane
from perpetuo.control.users import require_superadmin
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.schema import audit_log
from perpetuo.store.timeutil import iso


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    actor_id: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: dt.datetime | None = None  # inclusive
    until: dt.datetime | None = None  # exclusive


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _filtered(query: Select[Any], filters: AuditFilters) -> Select[Any]:
    columns = audit_log.c
    for name in ("action", "actor_id", "target_type", "target_id"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(columns[name] == value)
    since, until = _utc(filters.since), _utc(filters.until)
    if since is not None and until is not None and since >= until:
        raise invalid("`since` must be before `until`.", "since")
    if since is not None:
        query = query.where(columns.created_at >= since)
    if until is not None:
        query = query.where(columns.created_at < until)
    return query


def audit_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "object": "audit_event",
        "workspace_id": row.workspace_id,
        "actor": {"type": row.actor_type, "id": row.actor_id},
        "action": row.action,
        "target": {"type": row.target_type, "id": row.target_id},
        "before": row.before,
        "after": row.after,
        "ip": row.ip,
        "user_agent": row.user_agent,
        "created_at": iso(row.created_at),
    }


async def workspace_audit(
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str,
    filters: AuditFilters,
    *,
    limit: int,
    cursor: str | None,
) -> Page:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "audit.read")
        query = _filtered(
            select(audit_log).where(audit_log.c.workspace_id == workspace_id), filters
        )
        return to_page(
            (await conn.execute(newest_first(query, audit_log, cursor, limit))).all(), limit
        )


async def platform_audit(
    plane: ControlPlane, actor: Actor, filters: AuditFilters, *, limit: int, cursor: str | None
) -> Page:
    """Entries not tied to a workspace: accounts, sign-in security events."""
    require_superadmin(actor)
    query = _filtered(select(audit_log).where(audit_log.c.workspace_id.is_(None)), filters)
    async with plane.db.connect() as conn:
        return to_page(
            (await conn.execute(newest_first(query, audit_log, cursor, limit))).all(), limit
        )
