"""Who is looking at the dashboard: the session cookie, checked against its session row.

The cookie holds the session's refresh token (opaque, `prt_<session id>.<secret>`) from the
same sessions table the admin API uses; only its hash is stored. It is verified on every
request, so a revoked session (log out, password change, disabled account) stops at once.
The browser never holds an access token.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select

from perpetuo.auth.api_keys import token_hash
from perpetuo.control.actor import Actor, Role
from perpetuo.control.permissions import dashboard_rank
from perpetuo.control.plane import ControlPlane
from perpetuo.control.sessions import session_id_of
from perpetuo.store.role_tables import workspace_roles
from perpetuo.store.schema import memberships, sessions, users, workspaces
from perpetuo.store.timeutil import utcnow
from perpetuo.ui.security import SESSION_COOKIE, csrf_token


class SignInRequired(Exception):
    """No live session: pages answer with a redirect to the sign-in form."""


@dataclass(frozen=True)
class Membership:
    workspace_id: str
    name: str
    role: Role


@dataclass(frozen=True)
class Visitor:
    user_id: str
    email: str
    name: str
    is_superadmin: bool
    session_id: str
    csrf: str
    ip: str | None
    user_agent: str | None
    memberships: list[Membership] = field(default_factory=list)
    email_verified: bool = True
    # Unverified on a server that sends mail: the layout shows a banner with a resend button.
    needs_verification: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(
            kind="user",
            user_id=self.user_id,
            is_superadmin=self.is_superadmin,
            ip=self.ip,
            user_agent=self.user_agent,
            session_id=self.session_id,
        )

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def role_in(self, workspace_id: str) -> Role | None:
        for membership in self.memberships:
            if membership.workspace_id == workspace_id:
                return membership.role
        return None


def plane_of(request: Request) -> ControlPlane:
    return request.app.state.plane


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def find_visitor(request: Request) -> Visitor | None:
    token = request.cookies.get(SESSION_COOKIE)
    session_id = session_id_of(token) if token else None
    if token is None or session_id is None:
        return None
    plane = plane_of(request)
    async with plane.db.connect() as conn:
        row = (
            await conn.execute(
                select(
                    sessions.c.refresh_hash,
                    sessions.c.revoked_at,
                    sessions.c.expires_at,
                    users.c.id,
                    users.c.email,
                    users.c.name,
                    users.c.is_superadmin,
                    users.c.disabled_at,
                    users.c.email_verified_at,
                )
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(sessions.c.id == session_id)
            )
        ).first()
        if (
            row is None
            or row.revoked_at is not None
            or row.expires_at <= utcnow()
            or row.disabled_at is not None
            or not hmac.compare_digest(token_hash(token), row.refresh_hash)
        ):
            return None
        rows = (
            await conn.execute(
                select(
                    memberships.c.workspace_id,
                    memberships.c.role,
                    workspaces.c.name,
                    workspace_roles.c.permissions,  # a custom role's
                )
                .join(workspaces, workspaces.c.id == memberships.c.workspace_id)
                .outerjoin(
                    workspace_roles,
                    (workspace_roles.c.workspace_id == memberships.c.workspace_id)
                    & (workspace_roles.c.name == memberships.c.role),
                )
                .where(memberships.c.user_id == row.id)
                .order_by(workspaces.c.name, workspaces.c.id)
            )
        ).all()
    return Visitor(
        user_id=row.id,
        email=row.email,
        name=row.name,
        is_superadmin=bool(row.is_superadmin),
        session_id=session_id,
        csrf=csrf_token(request.app.state.csrf_key, session_id),
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        memberships=[
            Membership(r.workspace_id, r.name, dashboard_rank(r.role, r.permissions)) for r in rows
        ],
        email_verified=row.email_verified_at is not None,
        needs_verification=row.email_verified_at is None and plane.mail.enabled,
    )


async def signed_in(request: Request) -> Visitor:
    visitor = await find_visitor(request)
    if visitor is None:
        raise SignInRequired()
    return visitor


VisitorDep = Annotated[Visitor, Depends(signed_in)]


def safe_next(value: Any) -> str | None:
    """Where to go after signing in: only a path inside the dashboard (no open redirect)."""
    if not isinstance(value, str) or not (value == "/ui" or value.startswith(("/ui/", "/ui?"))):
        return None
    return None if any(c in value for c in "\\\r\n") or value.startswith("/ui//") else value
