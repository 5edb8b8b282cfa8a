"""Sign-in sessions: one row per sign-in, holding only the hash of its refresh token.

An access token is a short-lived JWT naming its session; the admin API checks the session
on every request, so revoking it (log out, password change, account disabled) ends every
access token of that session at once.

Refresh tokens are single use: `prt_<session id>.<secret>`. Each refresh replaces the secret.
Presenting a secret that is no longer the session's current one means a rotated token was
replayed — the token was probably stolen, and either the thief or the owner holds the
current one — so the whole session is revoked and both must sign in again. (Two refreshes
racing with the same token look exactly like that, and end the session the same way.)
Sessions end `refresh_ttl` after sign-in whatever the refreshes: an absolute lifetime.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from perpetuo.auth.api_keys import token_hash
from perpetuo.auth.tokens import InvalidToken, issue_access_token, verify_access_token
from perpetuo.control.errors import unauthorized
from perpetuo.control.plane import ControlPlane
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.schema import sessions, users
from perpetuo.store.timeutil import utcnow

REFRESH_PREFIX = "prt_"


@dataclass(frozen=True)
class ClientInfo:
    """Where a sign-in comes from, kept on the session for the people reviewing it."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: str


def _new_refresh_token(session_id: str) -> str:
    return f"{REFRESH_PREFIX}{session_id}.{secrets.token_urlsafe(32)}"


def session_id_of(refresh_token: str) -> str | None:
    """The session a refresh token names, or None if it is not shaped like one."""
    if not refresh_token.startswith(REFRESH_PREFIX):
        return None
    session_id, dot, secret = refresh_token[len(REFRESH_PREFIX) :].partition(".")
    return session_id if dot and session_id and secret else None


def _access(plane: ControlPlane, user_id: str, session_id: str, refresh: str) -> Tokens:
    token, _ = issue_access_token(
        plane.keys.jwt_signing, user_id, session_id, plane.tokens.access_ttl
    )
    return Tokens(token, int(plane.tokens.access_ttl), refresh, session_id)


async def open_session(
    conn: AsyncConnection, plane: ControlPlane, user_id: str, client: ClientInfo
) -> Tokens:
    session_id = new_id("ses")
    refresh = _new_refresh_token(session_id)
    now = utcnow()
    await conn.execute(
        insert(sessions).values(
            id=session_id,
            user_id=user_id,
            refresh_hash=token_hash(refresh),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=plane.tokens.refresh_ttl),
            ip=(client.ip or "")[:64] or None,
            user_agent=(client.user_agent or "")[:300] or None,
        )
    )
    return _access(plane, user_id, session_id, refresh)


@dataclass(frozen=True)
class Refreshed:
    tokens: Tokens | None  # None: the token was a replay and the session is now revoked
    user: Any
    session_id: str


async def rotate(conn: AsyncConnection, plane: ControlPlane, refresh_token: str) -> Refreshed:
    """New tokens for a current refresh token; raises 401 for anything not usable."""
    session_id = session_id_of(refresh_token)
    if session_id is None:
        raise unauthorized("This is not a refresh token.", "invalid_refresh_token")
    row = (
        await conn.execute(
            select(sessions.c.refresh_hash, sessions.c.revoked_at, sessions.c.expires_at, users)
            .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
            .where(sessions.c.id == session_id)
        )
    ).first()
    if row is None:
        raise unauthorized("This refresh token is not valid.", "invalid_refresh_token")
    if row.revoked_at is not None:
        raise unauthorized("This session has ended; sign in again.", "session_revoked")
    if row.expires_at <= utcnow():
        raise unauthorized("This session has expired; sign in again.", "session_expired")
    presented = token_hash(refresh_token)
    if not hmac.compare_digest(presented, row.refresh_hash):
        await revoke(conn, session_id)
        return Refreshed(None, row, session_id)
    if row.disabled_at is not None:
        raise unauthorized("This account is disabled.", "account_disabled")
    refresh = _new_refresh_token(session_id)
    # Conditional on the old hash: of two concurrent refreshes only one can win.
    result = await conn.execute(
        update(sessions)
        .where(
            sessions.c.id == session_id,
            sessions.c.refresh_hash == presented,
            sessions.c.revoked_at.is_(None),
        )
        .values(refresh_hash=token_hash(refresh))
    )
    if result.rowcount != 1:
        await revoke(conn, session_id)
        return Refreshed(None, row, session_id)
    return Refreshed(_access(plane, row.id, session_id, refresh), row, session_id)


async def find_by_refresh(conn: AsyncConnection, refresh_token: str) -> Any:
    """The live session whose current refresh token this is, or None."""
    session_id = session_id_of(refresh_token)
    if session_id is None:
        return None
    row = (await conn.execute(select(sessions).where(sessions.c.id == session_id))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row if hmac.compare_digest(token_hash(refresh_token), row.refresh_hash) else None


async def revoke(conn: AsyncConnection, session_id: str) -> bool:
    result = await conn.execute(
        update(sessions)
        .where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount == 1


async def revoke_all(conn: AsyncConnection, user_id: str, *, keep: str | None = None) -> int:
    """End every live session of a user (but `keep`); returns how many ended."""
    query = update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep is not None:
        query = query.where(sessions.c.id != keep)
    result = await conn.execute(query.values(revoked_at=utcnow()))
    return int(result.rowcount or 0)


async def is_platform_admin(plane: ControlPlane, access_token: str) -> bool:
    """True for a live access token of an enabled platform administrator (for operator-only
    detail outside the admin API, such as readiness)."""
    try:
        claims = verify_access_token(plane.keys.jwt_signing, access_token)
    except InvalidToken:
        return False
    async with plane.db.connect() as conn:
        row = (
            await conn.execute(
                select(users.c.is_superadmin, users.c.disabled_at, sessions.c.revoked_at)
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(
                    sessions.c.id == claims.session_id,
                    users.c.id == claims.user_id,
                    sessions.c.expires_at > utcnow(),
                )
            )
        ).first()
    return (
        row is not None
        and bool(row.is_superadmin)
        and row.disabled_at is None
        and row.revoked_at is None
    )
