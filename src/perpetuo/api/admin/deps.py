"""Who is calling the admin API: a person (access token) or the platform (master key)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy import select

from perpetuo.auth.authenticator import bearer_token
from perpetuo.auth.tokens import InvalidToken, verify_access_token
from perpetuo.control.actor import Actor
from perpetuo.control.errors import unauthorized
from perpetuo.control.plane import ControlPlane
from perpetuo.store.schema import sessions, users
from perpetuo.store.timeutil import utcnow

# Only declares the scheme in the OpenAPI schema; `current_actor` reads the header itself.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token from /api/auth/login (or /signup, /refresh), or the master key",
)


def plane(request: Request) -> ControlPlane:
    return request.app.state.plane


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def current_actor(request: Request, _: Annotated[Any, Depends(bearer_scheme)]) -> Actor:
    control: ControlPlane = request.app.state.plane
    token = bearer_token({k.lower(): v for k, v in request.headers.items()})
    if token is None:
        raise unauthorized(
            "Sign in first: send `Authorization: Bearer <access token>`.", "missing_credentials"
        )
    agent = request.headers.get("user-agent")
    master: bytes | None = request.app.state.master_key
    if master is not None and hmac.compare_digest(token.encode(), master):
        return Actor(kind="master", is_superadmin=True, ip=client_ip(request), user_agent=agent)
    try:
        claims = verify_access_token(control.keys.jwt_signing, token)
    except InvalidToken as exc:
        raise unauthorized(f"Not signed in: {exc}.", "invalid_token") from None
    async with control.db.connect() as conn:
        row = (
            await conn.execute(
                select(
                    users.c.is_superadmin,
                    users.c.disabled_at,
                    sessions.c.revoked_at,
                    sessions.c.expires_at,
                )
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(sessions.c.id == claims.session_id, users.c.id == claims.user_id)
            )
        ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise unauthorized("This session has ended; sign in again.", "session_revoked")
    if row.disabled_at is not None:
        raise unauthorized("This account is disabled.", "account_disabled")
    return Actor(
        kind="user",
        user_id=claims.user_id,
        is_superadmin=bool(row.is_superadmin),
        ip=client_ip(request),
        user_agent=agent,
        session_id=claims.session_id,
    )


ActorDep = Annotated[Actor, Depends(current_actor)]
PlaneDep = Annotated[ControlPlane, Depends(plane)]
