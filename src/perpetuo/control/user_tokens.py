"""Single-use tokens mailed to people: e-mail verification and password reset.

Only a token's SHA-256 is stored. Using one is a conditional update (`used_at IS NULL`), so
a token raced by two requests works once; it also stops working when it expires or when
the account's address is no longer the one it was sent to.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import func, insert, select, update

from perpetuo.auth.api_keys import token_hash
from perpetuo.control.errors import invalid
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.schema import user_tokens, users
from perpetuo.store.timeutil import utcnow

PREFIXES = {"verify_email": "pve_", "password_reset": "ppr_"}


async def issue(
    conn: AsyncConnection, user_id: str, email: str, purpose: str, ttl: dt.timedelta
) -> str:
    token = PREFIXES[purpose] + secrets.token_urlsafe(32)
    now = utcnow()
    await conn.execute(
        insert(user_tokens).values(
            id=new_id("utk"),
            user_id=user_id,
            purpose=purpose,
            token_hash=token_hash(token),
            email=email,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


async def issued_since(
    conn: AsyncConnection, user_id: str, purpose: str, since: dt.datetime
) -> int:
    """Tokens of this kind sent to this person since then (to space resends out)."""
    count = await conn.scalar(
        select(func.count())
        .select_from(user_tokens)
        .where(
            user_tokens.c.user_id == user_id,
            user_tokens.c.purpose == purpose,
            user_tokens.c.created_at >= since,
        )
    )
    return int(count or 0)


def mail_off(message: str) -> GatewayError:
    """A mail flow on a server without SMTP settings: the server's policy, not a fault."""
    return GatewayError(403, message, type=ErrorType.PERMISSION, code="mail_not_configured")


def _gone(message: str, code: str) -> GatewayError:
    return GatewayError(410, message, type=ErrorType.INVALID_REQUEST, code=code, param="token")


async def use(conn: AsyncConnection, token: str, purpose: str) -> Any:
    """The account the token was for (the token is used up); 422 for an unknown token, 410
    for one already used or expired, or sent to an address the account no longer has."""
    row = (
        await conn.execute(
            select(user_tokens).where(
                user_tokens.c.token_hash == token_hash(token.strip()),
                user_tokens.c.purpose == purpose,
            )
        )
    ).first()
    if row is None:
        raise invalid("This link is not valid: copy the whole address from the mail.", "token")
    if row.used_at is not None:
        raise _gone("This link was already used. Ask for a new one.", "token_used")
    if row.expires_at <= utcnow():
        raise _gone("This link has expired. Ask for a new one.", "token_expired")
    user = (await conn.execute(select(users).where(users.c.id == row.user_id))).first()
    if user is None or user.email != row.email or user.disabled_at is not None:
        raise _gone("This link is no longer valid for this account.", "token_stale")
    used = await conn.execute(
        update(user_tokens)
        .where(user_tokens.c.id == row.id, user_tokens.c.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:
        raise _gone("This link was already used. Ask for a new one.", "token_used")
    return user


async def retire(conn: AsyncConnection, user_id: str, purpose: str) -> None:
    """Every unused token of this kind stops working (after a reset, the other reset links)."""
    await conn.execute(
        update(user_tokens)
        .where(
            user_tokens.c.user_id == user_id,
            user_tokens.c.purpose == purpose,
            user_tokens.c.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )


async def peek_email(conn: AsyncConnection, token: str, purpose: str) -> str | None:
    """The address an unused token was sent to, without using it (None if there is none)."""
    return await conn.scalar(
        select(user_tokens.c.email).where(
            user_tokens.c.token_hash == token_hash(token.strip()),
            user_tokens.c.purpose == purpose,
            user_tokens.c.used_at.is_(None),
        )
    )
