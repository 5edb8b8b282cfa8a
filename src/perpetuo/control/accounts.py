"""People: accounts, sign-up, sign-in, token refresh, sign-out, and one's own profile.

Passwords are hashed with argon2id off the event loop (a hash takes a noticeable fraction
of a second of CPU). Sign-in is throttled per (account, client address) and per client
address (see auth/throttle.py) before any password is checked, never for an address that has
not failed; an unknown email address costs the same hash verification as a known one, so
timing does not reveal which accounts exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from sqlalchemy import Integer, String, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from perpetuo.auth.passwords import DUMMY_HASH, hash_password, password_problem, verify_password
from perpetuo.control import audit, sessions
from perpetuo.control.actor import Actor
from perpetuo.control.email_verification import queue_verification
from perpetuo.control.errors import conflict, forbidden, invalid, too_many, unauthorized
from perpetuo.control.plane import ControlPlane
from perpetuo.control.sessions import ClientInfo, Tokens
from perpetuo.control.sso.policy import refuse_password
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.schema import UTCDateTime, memberships, platform_claim, users, workspaces
from perpetuo.store.timeutil import iso, utcnow

Password = Annotated[str, Field(min_length=1, max_length=256)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password
    name: Annotated[str, Field(max_length=200)] = ""
    invite_token: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="An invitation for this address: needed unless sign-up is open"
    )


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(min_length=1, max_length=320)]
    password: Password


class Refresh(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class ProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)] | None = None
    password: Password | None = Field(default=None, description="The new password")
    current_password: Password | None = Field(
        default=None, description="Required to set a new password"
    )


def user_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "user",
        "email": row.email,
        "name": row.name,
        "is_superadmin": bool(row.is_superadmin),
        "created_at": iso(row.created_at),
        "disabled": row.disabled_at is not None,
        "email_verified": getattr(row, "email_verified_at", None) is not None,
    }


def normalize_email(email: str) -> str:
    return email.strip().lower()


def token_view(tokens: Tokens, user: Any) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "token_type": "bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
        "user": user_view(user),
    }


async def _get_user(conn: AsyncConnection, user_id: str) -> Any:
    return (await conn.execute(select(users).where(users.c.id == user_id))).first()


async def _new_user_hash(spec: UserCreate, email: str) -> str:
    if problem := password_problem(spec.password, email):
        raise invalid(problem, "password")
    return await asyncio.to_thread(hash_password, spec.password)


async def _insert_user(
    conn: AsyncConnection,
    user_id: str,
    email: str,
    spec: UserCreate,
    password_hash: str,
    superadmin: bool,
    verified: bool = False,
) -> Any:
    taken = await conn.scalar(select(users.c.id).where(users.c.email == email))
    if taken is not None:
        raise conflict("An account with this email address already exists.", "email")
    await conn.execute(
        insert(users).values(
            id=user_id,
            email=email,
            name=spec.name.strip(),
            password_hash=password_hash,
            is_superadmin=superadmin,
            created_at=utcnow(),
            email_verified_at=utcnow() if verified else None,
            mail_opt_out=[],
        )
    )
    return await _get_user(conn, user_id)


async def create_user(
    plane: ControlPlane, actor: Actor, spec: UserCreate, *, superadmin: bool = False
) -> dict[str, Any]:
    email = normalize_email(spec.email)
    password_hash = await _new_user_hash(spec, email)
    user_id = new_id("usr")
    try:
        async with plane.db.begin() as conn:
            view = user_view(
                # An administrator vouches for the address of an account they create.
                await _insert_user(conn, user_id, email, spec, password_hash, superadmin, True)
            )
            await audit.record(
                conn,
                actor,
                "user.create",
                workspace_id=None,
                target_type="user",
                target_id=user_id,
                after=view,
            )
    except IntegrityError:  # the same address signed up concurrently
        raise conflict("An account with this email address already exists.", "email") from None
    return view


async def signup(plane: ControlPlane, spec: UserCreate, client: ClientInfo) -> dict[str, Any]:
    """A new account, signed in: the token response."""
    email = normalize_email(spec.email)
    await refuse_password(plane, email)
    password_hash = await _new_user_hash(spec, email)
    user_id = new_id("usr")
    actor = Actor(kind="user", user_id=user_id, ip=client.ip, user_agent=client.user_agent)
    try:
        async with plane.db.begin() as conn:
            # The very first account administers the platform (sign-up is how it is made).
            first = await claim_platform(conn, plane, user_id)
            if spec.invite_token and not await _invite_pending(conn, email, spec.invite_token):
                # Checked before the account exists: a bad invite creates nothing.
                raise forbidden("This invitation is not valid for this email address.")
            if not first:
                await _check_signup_allowed(conn, plane, email, spec.invite_token)
            # An invitation is mailed to its address: holding it shows the address is theirs.
            invited = bool(spec.invite_token)
            row = await _insert_user(conn, user_id, email, spec, password_hash, first, invited)
            await audit.record(
                conn,
                actor,
                "user.signup",
                workspace_id=None,
                target_type="user",
                target_id=user_id,
                after=user_view(row),
            )
            tokens = await sessions.open_session(conn, plane, user_id, client)
            if not invited:
                await queue_verification(conn, plane, user_id, email, row.name)
    except IntegrityError:
        raise conflict("An account with this email address already exists.", "email") from None
    if spec.invite_token:
        from perpetuo.control.invites import InviteAccept, accept_invite

        await accept_invite(plane, actor, InviteAccept(token=spec.invite_token))
    return token_view(tokens, row)


async def claim_platform(conn: AsyncConnection, plane: ControlPlane, user_id: str) -> bool:
    """True for the one sign-up that becomes the platform's first account, whatever the
    concurrency: the claim is a row under a primary key, inserted only while no account
    exists. A racing sign-up waits on the key, then finds it taken and inserts nothing. It is
    the transaction's first statement, so SQLite takes its write lock here (and waits for it)."""
    now = utcnow()
    claim = select(literal(1, Integer), literal(user_id, String), literal(now, UTCDateTime)).where(
        ~select(users.c.id).exists()
    )
    statement = (
        conn.insert(platform_claim)
        .from_select(["id", "user_id", "claimed_at"], claim)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    result = await conn.execute(statement)
    return result.rowcount == 1


async def _check_signup_allowed(
    conn: AsyncConnection, plane: ControlPlane, email: str, invite_token: str | None
) -> None:
    """Open sign-up lets anyone in; by invitation, a pending invite for this address is
    needed; closed, only administrators create accounts."""
    policy = plane.signup_policy
    if policy == "open":
        return
    if policy == "invite" and invite_token:
        if await _invite_pending(conn, email, invite_token):
            return
        raise forbidden("This invitation is not valid for this email address.")
    if policy == "invite":
        raise forbidden("Sign-up on this server needs an invitation: ask a workspace admin.")
    raise forbidden("Sign-up is closed on this server: ask an administrator for an account.")


async def _invite_pending(conn: AsyncConnection, email: str, invite_token: str) -> bool:
    """Is `invite_token` a pending invitation for `email`?"""
    from perpetuo.auth.api_keys import token_hash
    from perpetuo.control.invites import status_of
    from perpetuo.store.schema import invites

    row = (
        await conn.execute(
            select(invites).where(invites.c.token_hash == token_hash(invite_token.strip()))
        )
    ).first()
    return row is not None and row.email == email and status_of(row) == "pending"


async def _check_password(
    plane: ControlPlane, email: str, ip: str | None, stored_hash: str | None, password: str
) -> bool:
    """Throttled verification: 429 while this address must back off from this account; a
    failure counts against the (account, address) pair, the account and the address."""
    wait = await plane.throttle.retry_after(email, ip)
    if wait > 0:
        raise too_many(
            f"Too many failed sign-in attempts. Try again in {max(1, round(wait))} seconds.", wait
        )
    ok = await asyncio.to_thread(verify_password, stored_hash or DUMMY_HASH, password)
    if not ok or stored_hash is None:
        await plane.throttle.failed(email, ip)
        return False
    await plane.throttle.succeeded(email, ip)
    return True


async def login(plane: ControlPlane, spec: Login, client: ClientInfo) -> dict[str, Any]:
    email = normalize_email(spec.email)
    await refuse_password(plane, email)  # before any check: it depends on the domain only
    async with plane.db.connect() as conn:
        row = (await conn.execute(select(users).where(users.c.email == email))).first()
    stored = row.password_hash if row is not None else None
    if not await _check_password(plane, email, client.ip, stored, spec.password):
        raise unauthorized("Incorrect email address or password.", "invalid_credentials")
    if row.disabled_at is not None:
        raise forbidden("This account is disabled; ask a platform administrator.")
    async with plane.db.begin() as conn:
        tokens = await sessions.open_session(conn, plane, row.id, client)
    return token_view(tokens, row)


async def refresh(plane: ControlPlane, spec: Refresh, client: ClientInfo) -> dict[str, Any]:
    async with plane.db.begin() as conn:
        result = await sessions.rotate(conn, plane, spec.refresh_token)
        if result.tokens is None:
            # Committed with the revocation, before the refusal below.
            actor = Actor(kind="system", ip=client.ip, user_agent=client.user_agent)
            await audit.record(
                conn,
                actor,
                "session.refresh_reuse",
                workspace_id=None,
                target_type="session",
                target_id=result.session_id,
                after={"user_id": result.user.id, "revoked": True},
            )
    if result.tokens is None:
        raise unauthorized(
            "This refresh token was already used. The session has been ended to be safe; "
            "sign in again.",
            "refresh_token_reused",
        )
    return token_view(result.tokens, result.user)


async def logout(plane: ControlPlane, session_id: str | None, refresh_token: str | None) -> None:
    """End the session of the access token, or else of the refresh token given."""
    async with plane.db.begin() as conn:
        if session_id is None and refresh_token:
            row = await sessions.find_by_refresh(conn, refresh_token)
            session_id = row.id if row is not None else None
        if session_id is None:
            raise unauthorized(
                "Nothing to sign out of: send the access or refresh token.", "invalid_token"
            )
        await sessions.revoke(conn, session_id)


async def me(plane: ControlPlane, actor: Actor) -> dict[str, Any]:
    if actor.user_id is None:  # the master key: the platform itself, not a person
        return {"id": None, "object": "master_key", "is_superadmin": True, "memberships": []}
    async with plane.db.connect() as conn:
        row = await _get_user(conn, actor.user_id)
        rows = (
            await conn.execute(
                select(memberships.c.workspace_id, memberships.c.role, workspaces.c.name)
                .join(workspaces, workspaces.c.id == memberships.c.workspace_id)
                .where(memberships.c.user_id == actor.user_id)
                .order_by(workspaces.c.name, workspaces.c.id)
            )
        ).all()
    return {
        **user_view(row),
        "memberships": [
            {"workspace_id": r.workspace_id, "workspace_name": r.name, "role": r.role} for r in rows
        ],
    }


async def update_me(
    plane: ControlPlane, actor: Actor, spec: ProfileUpdate, session_id: str | None
) -> dict[str, Any]:
    """Change one's name and/or password; a new password ends one's other sessions."""
    if actor.user_id is None:
        raise forbidden("The master key has no profile.")
    async with plane.db.connect() as conn:
        row = await _get_user(conn, actor.user_id)
    new_hash = None
    if spec.password is not None:
        await refuse_password(plane, row.email)
        if spec.current_password is None:
            raise invalid("Give your current password to set a new one.", "current_password")
        if not await _check_password(
            plane, row.email, actor.ip, row.password_hash, spec.current_password
        ):
            raise invalid("The current password is not correct.", "current_password")
        if problem := password_problem(spec.password, row.email):
            raise invalid(problem, "password")
        new_hash = await asyncio.to_thread(hash_password, spec.password)
    async with plane.db.begin() as conn:
        before = user_view(row)
        if spec.name is not None and spec.name.strip() != row.name:
            await conn.execute(
                update(users).where(users.c.id == row.id).values(name=spec.name.strip())
            )
            after = user_view(await _get_user(conn, row.id))
            await audit.record(
                conn,
                actor,
                "user.update",
                workspace_id=None,
                target_type="user",
                target_id=row.id,
                before=before,
                after=after,
            )
        if new_hash is not None:
            await conn.execute(
                update(users).where(users.c.id == row.id).values(password_hash=new_hash)
            )
            ended = await sessions.revoke_all(conn, row.id, keep=session_id)
            await audit.record(
                conn,
                actor,
                "user.password_change",
                workspace_id=None,
                target_type="user",
                target_id=row.id,
                after={"password_changed": True, "other_sessions_revoked": ended},
            )
    return await me(plane, actor)
