"""Alert channels for the admin API: create (secrets sealed, the signing secret shown once),
list, read, change, delete, and send a test alert through one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from perpetuo.auth.credential_crypto import Keyring
from perpetuo.control import audit
from perpetuo.control.actor import Actor
from perpetuo.control.alerts.admin import authorize, scoped
from perpetuo.control.alerts.channels import (
    ChannelCreate,
    ChannelUpdate,
    channel_view,
    display_of,
    new_signing_secret,
    reveal,
    seal,
)
from perpetuo.control.alerts.payloads import TEST
from perpetuo.control.alerts.state import record_event
from perpetuo.control.errors import forbidden, invalid, not_found, unavailable
from perpetuo.control.outbound import check_tenant_url
from perpetuo.control.plane import ControlPlane
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.alert_tables import alert_channels, alert_deliveries
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.schema import memberships, users
from perpetuo.store.timeutil import utcnow


def _keyring(plane: ControlPlane) -> Keyring:
    if plane.keyring is None:
        raise unavailable(
            "Alert channels hold secrets, and their storage is not configured on this server: "
            "the operator must set PERPETUO_ENCRYPTION_KEYS.",
            "encryption_not_configured",
        )
    return plane.keyring


async def _check_recipients(
    conn: AsyncConnection, workspace_id: str | None, to: list[str] | None
) -> list[str] | None:
    """Alert mail goes to people of the scope only, never to any address a tenant names."""
    if not to:
        return None
    u, m = users.c, memberships.c
    if workspace_id is None:
        query = select(u.email).where(u.is_superadmin.is_(True))
    else:
        query = (
            select(u.email)
            .join(memberships, m.user_id == u.id)
            .where(m.workspace_id == workspace_id)
        )
    known = {e.lower() for e in await conn.scalars(query.where(u.email.in_(to)))}
    wanted = list(dict.fromkeys(to))
    if missing := [a for a in wanted if a.lower() not in known]:
        who = "platform administrators" if workspace_id is None else "members of this workspace"
        raise invalid(f"to: these addresses are not {who}: {', '.join(missing)}.", "to")
    return wanted


async def _channel(conn: AsyncConnection, workspace_id: str | None, channel_id: str) -> Any:
    row = (
        await conn.execute(
            select(alert_channels).where(
                alert_channels.c.id == channel_id, scoped(alert_channels, workspace_id)
            )
        )
    ).first()
    if row is None:
        raise not_found("Alert channel")
    return row


def _target(
    plane: ControlPlane, spec: ChannelCreate, workspace_id: str | None, channel_id: str
) -> tuple[Any, str, str | None]:
    """A new channel's sealed URL (and signing secret), its display and the secret to show
    once; an e-mail channel has none of these."""
    if spec.kind == "email":
        if not plane.mail.enabled:
            raise forbidden(
                "Mail is not configured on this server (PERPETUO_SMTP_HOST): use a webhook or "
                "Slack channel."
            )
        if spec.url is not None:
            raise invalid("url: e-mail channels have no URL.", "url")
        return None, "", None
    if spec.url is None:
        raise invalid(f"url: a {spec.kind} channel needs one.", "url")
    if spec.to is not None:
        raise invalid("to: only e-mail channels have recipients.", "to")
    url = spec.url.get_secret_value()
    check_tenant_url(plane, url, "url")
    secret, signing = {"url": url}, None
    if spec.kind == "webhook":
        given = spec.signing_secret
        signing = given.get_secret_value() if given else new_signing_secret()
        secret["signing_secret"] = signing
    return seal(_keyring(plane), secret, workspace_id, channel_id), display_of(url), signing


async def create_channel(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, spec: ChannelCreate
) -> dict[str, Any]:
    channel_id, now = new_id("alch"), utcnow()
    async with plane.db.begin() as conn:
        await authorize(conn, actor, workspace_id, write=True)  # before judging the body
        sealed, display, signing = _target(plane, spec, workspace_id, channel_id)
        to = await _check_recipients(conn, workspace_id, spec.to)
        if spec.kind == "email":
            display = ", ".join(to) if to else "owners and admins"
        await conn.execute(
            insert(alert_channels).values(
                id=channel_id,
                workspace_id=workspace_id,
                name=spec.name,
                kind=spec.kind,
                settings={"to": to} if to else {},
                display=display[:300],
                ciphertext=sealed.ciphertext if sealed else None,
                nonce=sealed.nonce if sealed else None,
                key_id=sealed.key_id if sealed else None,
                enabled=spec.enabled,
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
            )
        )
        view = channel_view(await _channel(conn, workspace_id, channel_id))
        await audit.record(
            conn,
            actor,
            "alert_channel.create",
            workspace_id=workspace_id,
            target_type="alert_channel",
            target_id=channel_id,
            after=view,
        )
    if signing is not None:
        # Shown this once: receivers need it to check signatures; it is never shown again.
        return {**view, "signing_secret": signing}
    return view


async def list_channels(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await authorize(conn, actor, workspace_id, write=False)
        query = newest_first(
            select(alert_channels).where(scoped(alert_channels, workspace_id)),
            alert_channels,
            cursor,
            limit,
        )
        return to_page((await conn.execute(query)).all(), limit)


async def get_channel(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, channel_id: str
) -> dict[str, Any]:
    async with plane.db.connect() as conn:
        await authorize(conn, actor, workspace_id, write=False)
        return channel_view(await _channel(conn, workspace_id, channel_id))


async def update_channel(
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str | None,
    channel_id: str,
    spec: ChannelUpdate,
) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        await authorize(conn, actor, workspace_id, write=True)
        row = await _channel(conn, workspace_id, channel_id)
        changes: dict[str, Any] = {}
        if spec.name is not None:
            changes["name"] = spec.name
        if spec.enabled is not None:
            changes["enabled"] = spec.enabled
        if spec.to is not None:
            if row.kind != "email":
                raise invalid("to: only e-mail channels have recipients.", "to")
            to = await _check_recipients(conn, workspace_id, spec.to)
            changes["settings"] = {"to": to} if to else {}
            changes["display"] = ", ".join(to)[:300] if to else "owners and admins"
        if spec.url is not None:
            if row.kind == "email":
                raise invalid("url: e-mail channels have no URL.", "url")
            url = spec.url.get_secret_value()
            check_tenant_url(plane, url, "url")
            keyring = _keyring(plane)
            secret = {**reveal(keyring, row), "url": url}  # the signing secret stays
            sealed = seal(keyring, secret, workspace_id, channel_id)
            changes.update(
                ciphertext=sealed.ciphertext,
                nonce=sealed.nonce,
                key_id=sealed.key_id,
                display=display_of(url),
            )
        await conn.execute(
            update(alert_channels)
            .where(alert_channels.c.id == channel_id)
            .values(**changes, updated_at=utcnow())
        )
        view = channel_view(await _channel(conn, workspace_id, channel_id))
        await audit.record(
            conn,
            actor,
            "alert_channel.update",
            workspace_id=workspace_id,
            target_type="alert_channel",
            target_id=channel_id,
            before=channel_view(row),
            after=view,
        )
    return view


async def delete_channel(
    plane: ControlPlane, actor: Actor, workspace_id: str | None, channel_id: str
) -> None:
    async with plane.db.begin() as conn:
        await authorize(conn, actor, workspace_id, write=True)
        row = await _channel(conn, workspace_id, channel_id)
        await conn.execute(delete(alert_channels).where(alert_channels.c.id == channel_id))
        await audit.record(
            conn,
            actor,
            "alert_channel.delete",
            workspace_id=workspace_id,
            target_type="alert_channel",
            target_id=channel_id,
            before=channel_view(row),
        )


async def send_test(
    plane: ControlPlane, service: Any, actor: Actor, workspace_id: str | None, channel_id: str
) -> dict[str, Any]:
    """Record a test event for this channel and make its first attempt now; the outcome
    (a failure is retried like any delivery, and shows in the history)."""
    now = utcnow()
    async with plane.db.begin() as conn:
        await authorize(conn, actor, workspace_id, write=True)
        row = await _channel(conn, workspace_id, channel_id)
        alert = {
            "rule_id": None,
            "rule_name": row.name,  # the channel: what the test is of
            "kind": "test",
            "subject": row.name,
            "status": "firing",
            "summary": f"a test of the {row.kind} alert channel {row.name}",
            "value": None,
            "threshold": None,
            "details": {},
            "fired_at": None,
            "resolved_at": None,
            "renotification": False,
        }
        event_id = await record_event(
            conn, workspace_id, None, None, TEST, alert, now, channel_ids=[channel_id]
        )
        assert event_id is not None  # a fresh id: always recorded
        await audit.record(
            conn,
            actor,
            "alert_channel.test",
            workspace_id=workspace_id,
            target_type="alert_channel",
            target_id=channel_id,
            after={"event_id": event_id},
        )
    d = alert_deliveries.c
    claimed = await service.deliverer.claim_one(event_id, service.sender)
    ok = False
    if claimed is not None:
        ok = await service.deliverer.deliver(claimed, service.sender)
    async with plane.db.connect() as conn:
        outcome = (
            await conn.execute(select(alert_deliveries).where(d.event_id == event_id))
        ).first()
    return {
        "object": "alert_test",
        "event_id": event_id,
        "ok": ok,
        "status": outcome.status if outcome else "failed",
        "response_status": outcome.response_status if outcome else None,
        "error": outcome.last_error if outcome else "the channel is disabled",
    }
