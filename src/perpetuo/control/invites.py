"""Invites to a workspace by email address.

Creating an invite mails its link to the address when mail is configured, and returns its
token once either way (to pass on by hand where there is no mail); only the token's hash is
stored. The person with that email address accepts it while
signed in; an invite is single use and expires after `invite_ttl`. Only owners may invite
owners or admins — the same rule as granting those roles to an existing member.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import func, insert, select, update

from perpetuo.auth.api_keys import token_hash
from perpetuo.control import audit
from perpetuo.control.access import require
from perpetuo.control.accounts import normalize_email
from perpetuo.control.actor import Actor, Role
from perpetuo.control.errors import conflict, forbidden, not_found
from perpetuo.control.members import RoleName
from perpetuo.control.permissions import BUILT_IN
from perpetuo.control.plane import ControlPlane
from perpetuo.control.workspaces import get_row, workspace_view
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.repos.api_keys import touch_owned
from perpetuo.store.schema import invites, memberships, users
from perpetuo.store.timeutil import iso, utcnow

TOKEN_PREFIX = "pinv_"  # noqa: S105 (a prefix, not a secret)


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: RoleName = "member"


class InviteAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=200)]


def status_of(row: Any, now: dt.datetime | None = None) -> str:
    if row.accepted_at is not None:
        return "accepted"
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= (now or utcnow()):
        return "expired"
    return "pending"


def invite_view(row: Any) -> dict[str, Any]:
    """Never the token: it is shown once, at creation."""
    return {
        "id": row.id,
        "object": "invite",
        "workspace_id": row.workspace_id,
        "email": row.email,
        "role": row.role,
        "status": status_of(row),
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "accepted_at": iso(row.accepted_at),
        "revoked_at": iso(row.revoked_at),
    }


def _gone(message: str, code: str) -> GatewayError:
    return GatewayError(410, message, type=ErrorType.INVALID_REQUEST, code=code, param="token")


async def _get(conn: AsyncConnection, workspace_id: str, invite_id: str) -> Any:
    return (
        await conn.execute(
            select(invites).where(invites.c.workspace_id == workspace_id, invites.c.id == invite_id)
        )
    ).first()


async def create_invite(
    plane: ControlPlane, actor: Actor, workspace_id: str, spec: InviteCreate
) -> tuple[dict[str, Any], str]:
    """The invite's view and its token, which is never available again."""
    role = Role.parse(spec.role)
    email = normalize_email(spec.email)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    invite_id = new_id("inv")
    now = utcnow()
    async with plane.db.begin() as conn:
        grant = await require(conn, actor, workspace_id, "members.manage")
        if role >= Role.ADMIN and grant.rank != Role.OWNER:
            raise forbidden("Only owners can invite owners or admins.")
        if not grant.covers(BUILT_IN[role.label]):
            raise forbidden(f"The {role.label} role has permissions you lack.")
        member = await conn.scalar(
            select(users.c.id)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.workspace_id == workspace_id, users.c.email == email)
        )
        if member is not None:
            raise conflict("This person is already a member of the workspace.", "email")
        pending = await conn.scalar(
            select(func.count())
            .select_from(invites)
            .where(
                invites.c.workspace_id == workspace_id,
                invites.c.email == email,
                invites.c.accepted_at.is_(None),
                invites.c.revoked_at.is_(None),
                invites.c.expires_at > now,
            )
        )
        if pending:
            raise conflict(
                "An invite to this address is already pending; revoke it to send a new one.",
                "email",
            )
        await conn.execute(
            insert(invites).values(
                id=invite_id,
                workspace_id=workspace_id,
                email=email,
                role=role.label,
                token_hash=token_hash(token),
                created_by=actor.user_id,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=plane.tokens.invite_ttl),
            )
        )
        view = invite_view(await _get(conn, workspace_id, invite_id))
        await audit.record(
            conn,
            actor,
            "invite.create",
            workspace_id=workspace_id,
            target_type="invite",
            target_id=invite_id,
            after=view,
        )
        view["emailed"] = await _mail_invite(conn, plane, actor, workspace_id, view, token)
    return view, token


async def _mail_invite(
    conn: AsyncConnection,
    plane: ControlPlane,
    actor: Actor,
    workspace_id: str,
    view: dict[str, Any],
    token: str,
) -> bool:
    """Queue the invitation mail (in the invite's transaction); False when mail is off."""
    if not plane.mail.enabled:
        return False
    workspace = await get_row(conn, workspace_id)
    inviter = None
    if actor.user_id is not None:
        person = (
            await conn.execute(
                select(users.c.name, users.c.email).where(users.c.id == actor.user_id)
            )
        ).first()
        inviter = (person.name or person.email) if person is not None else None
    context = {
        "inviter": inviter or f"An administrator of {plane.mail.product}",
        "workspace_name": workspace.name,
        "role": view["role"],
        "accept_url": plane.mail.link("/ui/invite", token=token),
        "expires_days": max(1, round(plane.tokens.invite_ttl / 86400)),
    }
    queued = await plane.mail.send(
        conn, "invite", view["email"], context, workspace_id=workspace_id
    )
    return queued is not None


async def list_invites(
    plane: ControlPlane, actor: Actor, workspace_id: str, *, limit: int, cursor: str | None
) -> Page:
    async with plane.db.connect() as conn:
        await require(conn, actor, workspace_id, "members.manage")
        query = newest_first(
            select(invites).where(invites.c.workspace_id == workspace_id), invites, cursor, limit
        )
        return to_page((await conn.execute(query)).all(), limit)


async def revoke_invite(
    plane: ControlPlane, actor: Actor, workspace_id: str, invite_id: str
) -> None:
    async with plane.db.begin() as conn:
        await require(conn, actor, workspace_id, "members.manage")
        row = await _get(conn, workspace_id, invite_id)
        if row is None:
            raise not_found("Invite")
        if row.accepted_at is not None:
            raise conflict("This invite was already accepted; remove the member instead.")
        if row.revoked_at is not None:
            return
        await conn.execute(
            update(invites).where(invites.c.id == invite_id).values(revoked_at=utcnow())
        )
        await audit.record(
            conn,
            actor,
            "invite.revoke",
            workspace_id=workspace_id,
            target_type="invite",
            target_id=invite_id,
            before=invite_view(row),
            after=invite_view(await _get(conn, workspace_id, invite_id)),
        )


async def accept_invite(plane: ControlPlane, actor: Actor, spec: InviteAccept) -> dict[str, Any]:
    """Join the invite's workspace; returns the workspace as the new member sees it."""
    if actor.user_id is None:
        raise forbidden("Sign in as the person invited to accept an invite.")
    async with plane.db.begin() as conn:
        row = (
            await conn.execute(
                select(invites).where(invites.c.token_hash == token_hash(spec.token.strip()))
            )
        ).first()
        if row is None:
            raise not_found("Invite")
        email = await conn.scalar(select(users.c.email).where(users.c.id == actor.user_id))
        if normalize_email(email or "") != row.email:
            raise forbidden("This invite was sent to a different email address.")
        status = status_of(row)
        if status == "accepted":
            raise _gone("This invite has already been used.", "invite_used")
        if status == "revoked":
            raise _gone("This invite has been revoked.", "invite_revoked")
        if status == "expired":
            raise _gone("This invite has expired; ask for a new one.", "invite_expired")
        already = await conn.scalar(
            select(memberships.c.role).where(
                memberships.c.workspace_id == row.workspace_id,
                memberships.c.user_id == actor.user_id,
            )
        )
        if already is not None:
            raise conflict("You are already a member of this workspace.")
        now = utcnow()
        # Conditional, so a token raced by two requests is used once.
        used = await conn.execute(
            update(invites)
            .where(
                invites.c.id == row.id,
                invites.c.accepted_at.is_(None),
                invites.c.revoked_at.is_(None),
            )
            .values(accepted_at=now)
        )
        if used.rowcount != 1:
            raise _gone("This invite has already been used.", "invite_used")
        await conn.execute(
            insert(memberships).values(
                workspace_id=row.workspace_id,
                user_id=actor.user_id,
                role=row.role,
                created_at=now,
            )
        )
        # A returning member's old keys work again: other instances re-read them.
        await touch_owned(conn, actor.user_id, row.workspace_id)
        await audit.record(
            conn,
            actor,
            "invite.accept",
            workspace_id=row.workspace_id,
            target_type="invite",
            target_id=row.id,
            before=invite_view(row),
            after={"user_id": actor.user_id, "email": row.email, "role": row.role},
        )
        return workspace_view(await get_row(conn, row.workspace_id), row.role)
