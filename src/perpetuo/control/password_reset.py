"""Forgotten passwords: a single-use link by mail, then a new password.

Asking for a reset answers the same whether or not the address has an account, so it tells
nobody which addresses are registered; at most one link a minute goes to an account. A link
works once, for an hour, and only while the account keeps that address. Using it sets the
new password, ends every session of the account, retires its other reset links, and marks
the address verified (the mail reached its owner).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import select, update

from perpetuo.auth.passwords import hash_password, password_problem
from perpetuo.control import audit, sessions, user_tokens
from perpetuo.control.accounts import normalize_email
from perpetuo.control.actor import Actor
from perpetuo.control.email_verification import mark_verified
from perpetuo.control.errors import invalid
from perpetuo.control.plane import ControlPlane
from perpetuo.control.sessions import ClientInfo
from perpetuo.control.sso.policy import refuse_password
from perpetuo.control.user_tokens import mail_off
from perpetuo.store.schema import users
from perpetuo.store.timeutil import utcnow

PURPOSE = "password_reset"
TTL = dt.timedelta(hours=1)
RESEND_GAP = dt.timedelta(seconds=60)
PAGE = "/ui/reset-password"


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


class PasswordReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


async def request_reset(plane: ControlPlane, spec: ResetRequest, client: ClientInfo) -> None:
    """Mail a reset link to the account with this address, if there is one."""
    email = normalize_email(spec.email)
    await refuse_password(plane, email)
    if not plane.mail.enabled:
        raise mail_off(
            "This server does not send mail: ask an administrator to reset your password.",
        )
    async with plane.db.begin() as conn:
        row = (await conn.execute(select(users).where(users.c.email == email))).first()
        if row is None or row.disabled_at is not None:
            return
        if await user_tokens.issued_since(conn, row.id, PURPOSE, utcnow() - RESEND_GAP):
            return  # one link a minute: asking again cannot flood someone's inbox
        token = await user_tokens.issue(conn, row.id, email, PURPOSE, TTL)
        context = {
            "reset_url": plane.mail.link(PAGE, token=token),
            "expires_minutes": int(TTL.total_seconds() // 60),
            "ip": client.ip,
        }
        await plane.mail.send(conn, "password_reset", email, context, user_id=row.id, name=row.name)
        actor = Actor(kind="system", ip=client.ip, user_agent=client.user_agent)
        await audit.record(
            conn,
            actor,
            "user.password_reset_requested",
            workspace_id=None,
            target_type="user",
            target_id=row.id,
        )


async def reset_password(plane: ControlPlane, spec: PasswordReset, client: ClientInfo) -> str:
    """Set the new password from a reset link; the account's e-mail address."""
    async with plane.db.connect() as conn:  # check the password before using the token up
        pending = await user_tokens.peek_email(conn, spec.token, PURPOSE)
    if pending is not None:  # the domain may have turned SSO on since the link was sent
        await refuse_password(plane, pending)
    if pending is not None and (problem := password_problem(spec.password, pending)):
        raise invalid(problem, "password")
    new_hash = await asyncio.to_thread(hash_password, spec.password)
    async with plane.db.begin() as conn:
        user = await user_tokens.use(conn, spec.token, PURPOSE)
        await conn.execute(
            update(users).where(users.c.id == user.id).values(password_hash=new_hash)
        )
        ended = await sessions.revoke_all(conn, user.id, keep=None)
        await user_tokens.retire(conn, user.id, PURPOSE)
        await mark_verified(conn, user.id)
        actor = Actor(kind="user", user_id=user.id, ip=client.ip, user_agent=client.user_agent)
        await audit.record(
            conn,
            actor,
            "user.password_reset",
            workspace_id=None,
            target_type="user",
            target_id=user.id,
            after={"password_changed": True, "sessions_revoked": ended},
        )
    await plane.throttle.succeeded(user.email, client.ip)
    return user.email
