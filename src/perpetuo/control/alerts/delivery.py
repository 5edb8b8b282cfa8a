"""Delivering alert events: claim due deliveries, send each to its channel, record the outcome.

Deliveries are rows (alert_deliveries) claimed with a conditional UPDATE and a lease, as the
mail outbox does, so any instance may send and none sends a row twice while it lives. A
failed attempt is retried with a doubled delay (10% jitter) until `max_attempts`; a
destination the egress policy refuses, or one that answers 410 Gone, is not retried.
Every URL passes the egress policy twice: `check_url` before the request and the resolved
address at connect time (`egress=`), so a name rebound to an internal address is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, or_, select, update

from perpetuo.control.alerts.channels import reveal
from perpetuo.control.alerts.payloads import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    headline,
    sign,
    slack_message,
)
from perpetuo.control.mail.outbox import retry_delay
from perpetuo.control.plane import ControlPlane
from perpetuo.store.alert_tables import alert_channels, alert_deliveries, alert_events
from perpetuo.store.schema import memberships, users, workspaces
from perpetuo.store.timeutil import utcnow
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.egress import EgressRefused
from perpetuo.transport.url import URL, Timeouts

log = logging.getLogger("perpetuo.alerts")

TIMEOUTS = Timeouts(connect=3.0, first_byte=5.0, read=5.0, total=10.0)
LEASE = dt.timedelta(minutes=2)
ADMIN_ROLES = ("owner", "admin")
PLATFORM_ALERTS_DOCS = "/docs#/Alerts"  # the admin API's reference, at its Alerts section


@dataclass
class DeliveryPolicy:
    max_attempts: int = 8
    retry_seconds: float = 10.0


class Undeliverable(Exception):
    """Not worth retrying: the policy refuses the destination, or it said it is gone."""


class Deliverer:
    def __init__(
        self, plane: ControlPlane, http: HTTPClient | None, policy: DeliveryPolicy
    ) -> None:
        self.plane = plane
        self.http = http
        self.policy = policy
        self.sent = 0
        self.failed = 0

    # -- the queue ---------------------------------------------------------------------------

    async def claim(self, sender: str, limit: int) -> list[Any]:
        c = alert_deliveries.c
        now = utcnow()
        due = or_(
            and_(c.status == "pending", c.next_attempt_at <= now),
            and_(c.status == "sending", c.lease_until < now),  # its sender died
        )
        claimed: list[str] = []
        async with self.plane.db.begin() as conn:
            candidates = (
                await conn.scalars(
                    select(c.id)
                    .where(due)
                    .order_by(c.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for delivery_id in candidates:
                result = await conn.execute(
                    update(alert_deliveries)
                    .where(c.id == delivery_id, due)
                    .values(
                        status="sending",
                        claimed_by=sender,
                        lease_until=now + LEASE,
                        attempts=c.attempts + 1,
                    )
                )
                if result.rowcount == 1:
                    claimed.append(delivery_id)
            if not claimed:
                return []
            # In the order they were queued: a firing notice goes out before its recovery.
            query = select(alert_deliveries).where(c.id.in_(claimed))
            return list((await conn.execute(query.order_by(c.next_attempt_at, c.id))).all())

    async def claim_one(self, event_id: str, sender: str) -> Any:
        """The event's pending delivery, leased to `sender` now (a test sends at once)."""
        c = alert_deliveries.c
        now = utcnow()
        async with self.plane.db.begin() as conn:
            delivery_id = await conn.scalar(
                select(c.id).where(c.event_id == event_id, c.status == "pending")
            )
            if delivery_id is None:
                return None
            result = await conn.execute(
                update(alert_deliveries)
                .where(c.id == delivery_id, c.status == "pending")
                .values(
                    status="sending",
                    claimed_by=sender,
                    lease_until=now + LEASE,
                    attempts=c.attempts + 1,
                )
            )
            if result.rowcount != 1:
                return None
            return (await conn.execute(select(alert_deliveries).where(c.id == delivery_id))).one()

    async def deliver(self, row: Any, sender: str) -> bool:
        """One attempt at one claimed delivery, its outcome recorded; True when sent."""
        status: int | None = None
        try:
            status = await self._send(row)
        except Undeliverable as exc:
            await self._finish(row, sender, "failed", status, str(exc))
        except Exception as exc:  # any failure is the receiver's or the network's
            error = str(exc) or type(exc).__name__
            status = getattr(exc, "status", None)
            if row.attempts >= self.policy.max_attempts:
                await self._finish(row, sender, "failed", status, error)
            else:
                await self._retry(row, sender, status, error)
        else:
            await self._finish(row, sender, "sent", status, None)
            self.sent += 1
            return True
        self.failed += 1
        log.warning(
            "alert delivery %s (%s, attempt %d) failed", row.id, row.channel_kind, row.attempts
        )
        return False

    async def _finish(
        self, row: Any, sender: str, status: str, code: int | None, error: str | None
    ) -> None:
        c = alert_deliveries.c
        async with self.plane.db.begin() as conn:
            await conn.execute(
                update(alert_deliveries)
                .where(c.id == row.id, c.claimed_by == sender)
                .values(
                    status=status,
                    lease_until=None,
                    response_status=code,
                    last_error=error[:500] if error else None,
                    delivered_at=utcnow() if status == "sent" else None,
                )
            )

    async def _retry(self, row: Any, sender: str, code: int | None, error: str) -> None:
        c = alert_deliveries.c
        delay = retry_delay(row.attempts, self.policy.retry_seconds)
        async with self.plane.db.begin() as conn:
            await conn.execute(
                update(alert_deliveries)
                .where(c.id == row.id, c.claimed_by == sender)
                .values(
                    status="pending",
                    lease_until=None,
                    response_status=code,
                    last_error=error[:500],
                    next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
                )
            )

    # -- one attempt -------------------------------------------------------------------------

    async def _send(self, row: Any) -> int | None:
        async with self.plane.db.connect() as conn:
            payload = await conn.scalar(
                select(alert_events.c.payload).where(alert_events.c.id == row.event_id)
            )
            channel = None
            if row.channel_id is not None:
                channel = (
                    await conn.execute(
                        select(alert_channels).where(alert_channels.c.id == row.channel_id)
                    )
                ).first()
            legacy_url = None
            if row.channel_kind == "legacy_webhook":
                settings = await conn.scalar(
                    select(workspaces.c.settings).where(workspaces.c.id == row.workspace_id)
                )
                legacy_url = (settings or {}).get("alert_webhook_url")
        if payload is None:
            raise Undeliverable("the event no longer exists")
        if row.channel_kind == "legacy_webhook":
            if not legacy_url:
                raise Undeliverable("the workspace no longer has an alert_webhook_url")
            # The body budget alerts always had: receivers written for it keep working.
            body = json.dumps(payload["alert"]["details"]).encode()
            return await self.post(legacy_url, body, [])
        if row.channel_kind == "legacy_mail":
            from perpetuo.control.mail.jobs import queue_budget_alert

            async with self.plane.db.begin() as conn:
                await queue_budget_alert(conn, self.plane.mail, payload["alert"]["details"])
            return None
        if channel is None:
            raise Undeliverable("the channel was deleted")
        if self.plane.keyring is None and channel.ciphertext is not None:
            raise Undeliverable("PERPETUO_ENCRYPTION_KEYS is not set: the channel is sealed")
        secret = reveal(self.plane.keyring, channel) if channel.ciphertext is not None else {}
        if channel.kind == "webhook":
            body = json.dumps(payload).encode()
            stamp = int(time.time())
            headers = [
                (SIGNATURE_HEADER, sign(secret["signing_secret"].encode(), body, stamp)),
                (EVENT_ID_HEADER, payload["id"]),
                (EVENT_TYPE_HEADER, payload["type"]),
            ]
            return await self.post(secret["url"], body, headers)
        if channel.kind == "slack":
            return await self.post(secret["url"], json.dumps(slack_message(payload)).encode(), [])
        if channel.kind == "email":
            await self._mail(channel, payload)
            return None
        raise Undeliverable(f"unknown channel kind {channel.kind}")

    async def post(self, url: str, body: bytes, extra: list[tuple[str, str]]) -> int:
        if self.http is None:
            raise Undeliverable("no HTTP client")
        egress = self.plane.egress
        try:
            egress.check_url(url)
            headers = [
                ("content-type", "application/json"),
                ("user-agent", "perpetuo-alerts"),
                *extra,
            ]
            response = await self.http.request(
                "POST", URL.parse(url), headers, body, TIMEOUTS, egress=egress
            )
            await response.read()
        except EgressRefused as exc:
            raise Undeliverable(f"refused by the egress policy: {exc}") from None
        except Exception as exc:
            # The host only: webhook URLs often carry a secret in their path.
            host = urlsplit(url).hostname or "?"
            raise DeliveryFailed(f"{host}: {type(exc).__name__}: {exc}", None) from None
        if response.status == 410:
            raise Undeliverable("the receiver answered 410 Gone")
        if not 200 <= response.status < 300:
            raise DeliveryFailed(f"the receiver answered HTTP {response.status}", response.status)
        return response.status

    async def _mail(self, channel: Any, payload: dict[str, Any]) -> None:
        mailer = self.plane.mail
        if not mailer.enabled:
            raise Undeliverable("mail is not configured on this server (PERPETUO_SMTP_HOST)")
        workspace_id = channel.workspace_id
        addresses = (channel.settings or {}).get("to") or []
        u, m = users.c, memberships.c
        async with self.plane.db.begin() as conn:
            if workspace_id is None:
                query = select(u.id).where(u.is_superadmin.is_(True))
            else:
                query = (
                    select(u.id)
                    .join(memberships, m.user_id == u.id)
                    .where(m.workspace_id == workspace_id)
                )
                if not addresses:
                    query = query.where(m.role.in_(ADMIN_ROLES))
            if addresses:
                query = query.where(u.email.in_(addresses))
            people = list(await conn.scalars(query))
            name = None
            if workspace_id is not None:
                name = await conn.scalar(
                    select(workspaces.c.name).where(workspaces.c.id == workspace_id)
                )
            alert = payload["alert"]
            context = {
                "headline": headline(payload),
                "event_type": payload["type"],
                "rule_name": alert["rule_name"],
                "kind": alert["kind"],
                "subject": alert["subject"],
                "summary": alert["summary"],
                "status": alert["status"],
                "workspace_name": name,
                "platform": workspace_id is None,
                # Platform alerts have no dashboard page: their history is in the admin API.
                "alerts_url": mailer.link(
                    f"/ui/w/{workspace_id}/alerts" if workspace_id else PLATFORM_ALERTS_DOCS
                ),
            }
            for user_id in people:
                await mailer.send_to_user(
                    conn,
                    "alert",
                    user_id,
                    context,
                    workspace_id=workspace_id,
                    dedupe_key=f"alert:{payload['id']}:{channel.id}:{user_id}",
                )


class DeliveryFailed(Exception):
    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status
