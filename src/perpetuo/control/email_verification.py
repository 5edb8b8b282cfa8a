"""Confirming that people own their e-mail address.

When mail is configured, sign-up mails a single-use link (valid three days); opening it
marks the address verified, with no sign-in needed. Signed-in people who are not verified
see a banner and may ask for another link (one a minute at most). With
PERPETUO_REQUIRE_EMAIL_VERIFICATION an unverified account may sign in and look around but
not create workspaces or API keys. Accounts an administrator created, that joined through an
invitation sent to their address, or that reset their password by mail are verified.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from perpetuo.control import audit, user_tokens
from perpetuo.control.actor import Actor
from perpetuo.control.errors import conflict, forbidden, too_many
from perpetuo.control.plane import ControlPlane
from perpetuo.control.user_tokens import mail_off
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import users
from perpetuo.store.timeutil import utcnow

PURPOSE = "verify_email"
TTL = dt.timedelta(days=3)
RESEND_GAP = dt.timedelta(seconds=60)
PAGE = "/ui/verify-email"


class VerifyEmail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=200)]


async def queue_verification(
    conn: AsyncConnection, plane: ControlPlane, user_id: str, email: str, name: str
) -> bool:
    """Mail a verification link (in the caller's transaction); False when mail is off."""
    if not plane.mail.enabled:
        return False
    token = await user_tokens.issue(conn, user_id, email, PURPOSE, TTL)
    context = {
        "verify_url": plane.mail.link(PAGE, token=token),
        "expires_hours": int(TTL.total_seconds() // 3600),
    }
    await plane.mail.send(conn, "verify_email", email, context, user_id=user_id, name=name)
    return True


async def mark_verified(conn: AsyncConnection, user_id: str) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.email_verified_at.is_(None))
        .values(email_verified_at=utcnow())
    )


async def verify(plane: ControlPlane, spec: VerifyEmail, actor: Actor) -> dict[str, Any]:
    """Use a verification link: the address it was sent to is now verified."""
    async with plane.db.begin() as conn:
        user = await user_tokens.use(conn, spec.token, PURPOSE)
        await mark_verified(conn, user.id)
        await audit.record(
            conn,
            actor,
            "user.email_verified",
            workspace_id=None,
            target_type="user",
            target_id=user.id,
            after={"email": user.email, "email_verified": True},
        )
    return {"object": "email_verification", "email": user.email, "email_verified": True}


async def resend(plane: ControlPlane, actor: Actor) -> dict[str, Any]:
    """Another verification link for the signed-in person."""
    if actor.user_id is None:
        raise forbidden("The master key has no e-mail address.")
    if not plane.mail.enabled:
        raise mail_off("This server does not send mail.")
    async with plane.db.begin() as conn:
        row = (await conn.execute(select(users).where(users.c.id == actor.user_id))).first()
        if row.email_verified_at is not None:
            raise conflict("This e-mail address is already verified.")
        recent = await user_tokens.issued_since(conn, row.id, PURPOSE, utcnow() - RESEND_GAP)
        if recent:
            raise too_many(
                "A verification mail was sent less than a minute ago; check your inbox.",
                RESEND_GAP.total_seconds(),
            )
        await queue_verification(conn, plane, row.id, row.email, row.name)
    return {"object": "email_verification", "email": row.email, "email_verified": False}


async def require_verified(conn: AsyncConnection, plane: ControlPlane, actor: Actor) -> None:
    """403 for an unverified person when the server requires verified addresses."""
    if not plane.require_email_verification or actor.user_id is None or actor.is_superadmin:
        return
    verified = await conn.scalar(
        select(users.c.email_verified_at).where(users.c.id == actor.user_id)
    )
    if verified is None:
        raise forbidden(
            "Confirm your e-mail address first: open the link we mailed you, or ask for a "
            "new one (POST /api/auth/verify-email/resend, or the dashboard's banner)."
        )
