"""Budget soft thresholds, brought into the alert path.

The limits engine notices a threshold crossing as it settles a request and raises the event
once per budget period, whatever the number of instances (limits/alerts.py). Here it becomes
an alert: for each of the workspace's `budget_threshold` rules, firing until the period ends
(then a recovery notice: a new period started). A workspace with no such rule keeps the
behaviour it had before rules existed: the event is POSTed to its `alert_webhook_url`
setting, in the same body, and mailed to its owners and admins.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from perpetuo.control.alerts.payloads import FIRING
from perpetuo.control.alerts.rules import BUDGET_THRESHOLD
from perpetuo.control.alerts.state import Observation, observe, record_event
from perpetuo.control.plane import ControlPlane
from perpetuo.store.alert_tables import alert_rules
from perpetuo.store.schema import workspaces
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.alerts")

NO_END = dt.timedelta(days=3650)  # a "total" budget has no period that ends


def summary_of(event: dict[str, Any]) -> str:
    scope = {
        "workspace": "the workspace",
        "key": f"key {event.get('key_id') or event['scope_id']}",
        "user": f"member {event['scope_id']}",
        "team": f"team {event['scope_id']}",
    }.get(event["scope"], event["scope"])
    spent = event.get("spent_usd")
    spent_text = f" (${spent:,.2f} spent)" if spent is not None else ""
    return (
        f"spend of {scope} reached the ${event['threshold_usd']:,.2f} alert threshold of its "
        f"{event.get('period') or 'total'} budget{spent_text}"
    )


async def raise_budget_alert(
    plane: ControlPlane, event: dict[str, Any], now: dt.datetime | None = None
) -> list[str]:
    """Record the crossing as alerts; the ids of the events to deliver."""
    workspace_id = event.get("workspace_id")
    if not workspace_id:
        return []
    now = now or utcnow()
    r = alert_rules.c
    sent: list[str] = []
    async with plane.db.begin() as conn:
        settings = await conn.scalar(
            select(workspaces.c.settings).where(workspaces.c.id == workspace_id)
        )
        if settings is None:
            return []  # the workspace was deleted meanwhile
        rules = (
            await conn.execute(
                select(alert_rules).where(
                    r.workspace_id == workspace_id, r.kind == BUDGET_THRESHOLD
                )
            )
        ).all()
        if not rules:
            extra = ["legacy_webhook"] if settings.get("alert_webhook_url") else []
            if plane.mail.enabled:
                extra.append("legacy_mail")
            if extra:
                recorded = await record_event(
                    conn,
                    workspace_id,
                    None,
                    None,
                    FIRING,
                    _legacy_alert(event),
                    now,
                    channel_ids=[],
                    extra=extra,
                    once_as=_legacy_event_id(event),
                )
                sent += [recorded] if recorded else []
            return sent
        end = event.get("period_end")
        resolve_at = dt.datetime.fromisoformat(end) if end else now + NO_END
        seen = Observation(
            subject=f"{event['scope']}:{event['scope_id']}",
            summary=summary_of(event),
            value=event.get("spent_usd"),
            threshold=event["threshold_usd"],
            detail={**event, "threshold": event["threshold_usd"]},
            resolve_at=resolve_at,
        )
        for rule in rules:
            scopes = (rule.params or {}).get("scopes")
            if not rule.enabled or (scopes and event["scope"] not in scopes):
                continue
            if (event_id := await observe(conn, rule, seen, now)) is not None:
                sent.append(event_id)
    return sent


def _legacy_event_id(event: dict[str, Any]) -> str:
    """One id per budget and period: the crossing is told once, even when it is reported
    twice (an instance that counted alone while Redis was away, then Redis itself)."""
    about = "|".join(
        str(event.get(name))
        for name in ("workspace_id", "scope", "scope_id", "period", "period_start")
    )
    return "alev_" + hashlib.sha256(about.encode()).hexdigest()[:32]


def _legacy_alert(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule_id": None,
        "rule_name": "Budget alert",
        "kind": BUDGET_THRESHOLD,
        "subject": f"{event['scope']}:{event['scope_id']}",
        "status": "firing",
        "summary": summary_of(event),
        "value": event.get("spent_usd"),
        "threshold": event["threshold_usd"],
        "details": event,
        "fired_at": event.get("at"),
        "resolved_at": None,
        "renotification": False,
    }


def budget_listener(
    plane: ControlPlane, delivered: Callable[[], None]
) -> Callable[[dict[str, Any]], None]:
    """A listener for the limits engine's AlertSender: records the alert off the request
    path, then `delivered()` (the worker's poke) so it goes out at once."""
    tasks: set[asyncio.Task[None]] = set()

    async def run(event: dict[str, Any]) -> None:
        try:
            if await raise_budget_alert(plane, event):
                delivered()
        except Exception as exc:  # an alert never fails anything else
            log.warning(
                "budget alert for workspace %s not recorded: %s", event.get("workspace_id"), exc
            )

    def listener(event: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(run(event))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    listener.tasks = tasks  # type: ignore[attr-defined]
    return listener
