"""Mail the gateway sends on its own: budget alerts to workspace admins, notices of API keys
about to expire. Both are deduplicated in the outbox, so every instance may run them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from perpetuo.control.mail.service import Mailer
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.database import Database
from perpetuo.store.schema import api_keys, memberships, workspaces
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.mail")

SCOPE_LABELS = {"workspace": "the workspace", "key": "an API key", "user": "a member"}


async def queue_budget_alert(conn: AsyncConnection, mailer: Mailer, event: dict[str, Any]) -> None:
    """Mail a budget alert (limits/alerts.py's event) to the workspace's owners and admins,
    once per alert: the outbox's dedupe key holds across instances and retries. Delivered
    through the alert path (control/alerts/budget.py) for workspaces without budget rules."""
    workspace_id = event.get("workspace_id")
    if not workspace_id:
        return
    name = await conn.scalar(select(workspaces.c.name).where(workspaces.c.id == workspace_id))
    if name is None:
        return
    await mailer.send_to_workspace_admins(
        conn,
        workspace_id,
        "budget_alert",
        {
            "workspace_name": name,
            "scope": event["scope"],
            "scope_label": SCOPE_LABELS.get(event["scope"], event["scope"]),
            "threshold_usd": event["threshold_usd"],
            "budget_usd": event.get("budget_usd"),
            "spent_usd": event.get("spent_usd"),
            "period": event.get("period") or "total",
            "usage_url": mailer.link(f"/ui/w/{workspace_id}/usage"),
        },
        dedupe_key="budget:{}:{}:{}:{}".format(
            workspace_id,
            event["scope"],
            event["scope_id"],
            event.get("period_start") or "total",
        ),
    )


async def queue_key_expiry_notices(
    db: Database, mailer: Mailer, days: int, now: dt.datetime | None = None
) -> int:
    """Queue a notice for each live key expiring within `days`: to its owner, or to the
    workspace's owners and admins for a service key. One per key and expiry date, however
    often this runs and on however many instances. Returns how many mails were queued."""
    if not mailer.enabled:
        return 0
    now = now or utcnow()
    k = api_keys.c
    queued = 0
    async with db.begin() as conn:
        rows = (
            await conn.execute(
                select(
                    k.id,
                    k.workspace_id,
                    k.owner_id,
                    k.name,
                    k.prefix,
                    k.expires_at,
                    workspaces.c.name.label("workspace_name"),
                )
                .join(workspaces, workspaces.c.id == k.workspace_id)
                .where(
                    k.revoked_at.is_(None),
                    k.expires_at.is_not(None),
                    k.expires_at > now,
                    k.expires_at <= now + dt.timedelta(days=days),
                )
            )
        ).all()
        for row in rows:
            context = {
                "workspace_name": row.workspace_name,
                "key_name": row.name,
                "key_prefix": row.prefix,
                "expires_on": row.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                "keys_url": mailer.link(f"/ui/w/{row.workspace_id}/keys"),
            }
            dedupe = f"key_expiring:{row.id}:{row.expires_at.isoformat()}"
            owner_is_member = row.owner_id is not None and await conn.scalar(
                select(memberships.c.role).where(
                    memberships.c.workspace_id == row.workspace_id,
                    memberships.c.user_id == row.owner_id,
                )
            )
            if owner_is_member:
                queued += (
                    await mailer.send_to_user(
                        conn,
                        "key_expiring",
                        row.owner_id,
                        context,
                        workspace_id=row.workspace_id,
                        dedupe_key=dedupe,
                    )
                    is not None
                )
            else:
                queued += len(
                    await mailer.send_to_workspace_admins(
                        conn, row.workspace_id, "key_expiring", context, dedupe_key=dedupe
                    )
                )
    return queued
