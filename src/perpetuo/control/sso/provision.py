"""From who a provider says signed in to a session here: the account (the identity linked
before, else the account with that e-mail address, else one made just in time), its
membership and role in the provider's workspace, then the session.

What an address proves depends on who vouches for it. The operator's providers are trusted
for the addresses they verified (or their listed domains). A workspace's provider is the
tenant's own server, so it vouches only for domains a platform administrator verified for
that workspace, and never for a platform administrator's account: otherwise any workspace
could sign in as anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from perpetuo.control import audit, sessions
from perpetuo.control.actor import Actor
from perpetuo.control.errors import conflict, forbidden
from perpetuo.control.plane import ControlPlane
from perpetuo.control.sessions import ClientInfo, Tokens
from perpetuo.control.sso.flow import Identity
from perpetuo.control.sso.roles import RoleDecision, decide_role, rank
from perpetuo.control.sso.spec import ProviderSpec
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.ids import new_id
from perpetuo.store.schema import memberships, users, workspaces
from perpetuo.store.sso_tables import sso_identities, sso_sessions
from perpetuo.store.timeutil import utcnow


@dataclass(frozen=True)
class SignedIn:
    tokens: Tokens
    user_id: str
    workspace_id: str | None
    role: str | None  # the role in workspace_id after this sign-in


def check_address(spec: ProviderSpec, identity: Identity) -> None:
    """Refuse an address this provider may not vouch for."""
    domain = spec.domain_of(identity.email)
    if identity.email_verified is False:
        raise forbidden(
            f"{spec.name} has not verified your e-mail address {identity.email}: verify it "
            "there, then sign in again."
        )
    if spec.tenant and not spec.domains:
        raise forbidden(
            f"{spec.name} has no verified e-mail domain yet: a platform administrator must "
            "verify the workspace's domain before anyone can sign in with it."
        )
    if not spec.vouches_for(identity.email):
        raise forbidden(
            f"{spec.name} does not sign in addresses at {domain}: use your organisation's "
            "address, or another way to sign in."
        )
    if identity.email_verified is None and not spec.domains:
        raise forbidden(f"{spec.name} does not say that your e-mail address is verified.")
    if spec.kind == "google" and spec.domains and identity.claims.get("hd") not in spec.domains:
        raise forbidden(
            f"Sign in with your organisation's Google Workspace account (at {spec.domains[0]})."
        )


def role_refusal(spec: ProviderSpec, decision: RoleDecision) -> Any:
    groups = ", ".join(decision.groups[:10]) or "none"
    return forbidden(
        f"Your {spec.name} account is in no group that gives access to this workspace "
        f"(your groups: {groups}). Ask your administrator to add you to one."
    )


async def sign_in(
    plane: ControlPlane, spec: ProviderSpec, identity: Identity, client: ClientInfo
) -> SignedIn:
    check_address(spec, identity)
    decision = decide_role(spec.rules, identity.claims) if spec.workspace_id else None
    if decision is not None and decision.role is None:
        raise role_refusal(spec, decision)
    try:
        async with plane.db.begin() as conn:
            if spec.workspace_id is not None and not await _workspace_exists(
                conn, spec.workspace_id
            ):
                raise forbidden(f"The workspace {spec.name} signs in to no longer exists.")
            user = await _account(conn, plane, spec, identity, client)
            await _link(conn, spec, identity, user.id)
            role = None
            if spec.workspace_id is not None and decision is not None:
                role = await _membership(conn, spec, user.id, decision, client)
            tokens = await sessions.open_session(conn, plane, user.id, client)
            await conn.execute(
                insert(sso_sessions).values(
                    session_id=tokens.session_id,
                    provider_key=spec.key,
                    id_token=identity.id_token,
                    created_at=utcnow(),
                )
            )
            actor = Actor(kind="user", user_id=user.id, ip=client.ip, user_agent=client.user_agent)
            await audit.record(
                conn,
                actor,
                "user.sso_login",
                workspace_id=spec.workspace_id,
                target_type="user",
                target_id=user.id,
                after={"provider": spec.key, "subject": identity.subject, "role": role},
            )
    except IntegrityError:  # the same person's first two sign-ins raced
        raise conflict("You signed in twice at the same time: sign in again.") from None
    return SignedIn(tokens, user.id, spec.workspace_id, role)


async def _workspace_exists(conn: AsyncConnection, workspace_id: str) -> bool:
    found = await conn.scalar(select(workspaces.c.id).where(workspaces.c.id == workspace_id))
    return found is not None


async def _account(
    conn: AsyncConnection,
    plane: ControlPlane,
    spec: ProviderSpec,
    identity: Identity,
    client: ClientInfo,
) -> Any:
    linked = (
        await conn.execute(
            select(users)
            .join(sso_identities, sso_identities.c.user_id == users.c.id)
            .where(
                sso_identities.c.provider_key == spec.key,
                sso_identities.c.subject == identity.subject,
            )
        )
    ).first()
    user = (
        linked or (await conn.execute(select(users).where(users.c.email == identity.email))).first()
    )
    if user is None:
        user = await _create(conn, plane, spec, identity, client)
    if user.disabled_at is not None:
        raise forbidden("This account is disabled; ask a platform administrator.")
    if spec.tenant and user.is_superadmin:
        raise forbidden(
            "Platform administrators sign in with their password or a platform-wide provider."
        )
    return user


async def _create(
    conn: AsyncConnection,
    plane: ControlPlane,
    spec: ProviderSpec,
    identity: Identity,
    client: ClientInfo,
) -> Any:
    """A new account, made just in time: for a provider tied to a workspace or to domains,
    or, for a social sign-in (any address), only while sign-up is open."""
    may = spec.jit and (spec.workspace_id or spec.domains or plane.signup_policy == "open")
    if not may:
        raise forbidden(
            f"There is no account for {identity.email} on this server: ask a workspace admin "
            "for an invitation, then sign in."
        )
    user_id = new_id("usr")
    now = utcnow()
    await conn.execute(
        insert(users).values(
            id=user_id,
            email=identity.email,
            name=identity.name,
            password_hash="",  # none: password sign-in fails as for a wrong password
            is_superadmin=False,
            created_at=now,
            email_verified_at=now,  # the provider vouched for it (check_address)
            mail_opt_out=[],
        )
    )
    row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    actor = Actor(kind="user", user_id=user_id, ip=client.ip, user_agent=client.user_agent)
    await audit.record(
        conn,
        actor,
        "user.signup",
        workspace_id=None,
        target_type="user",
        target_id=user_id,
        after={"email": identity.email, "name": identity.name, "provider": spec.key},
    )
    return row


async def _link(
    conn: AsyncConnection, spec: ProviderSpec, identity: Identity, user_id: str
) -> None:
    now = utcnow()
    updated = await conn.execute(
        update(sso_identities)
        .where(
            sso_identities.c.provider_key == spec.key,
            sso_identities.c.subject == identity.subject,
        )
        .values(email=identity.email, last_login_at=now)
    )
    if updated.rowcount == 0:
        await conn.execute(
            insert(sso_identities).values(
                id=new_id("sid"),
                user_id=user_id,
                provider_key=spec.key,
                subject=identity.subject[:255],
                email=identity.email,
                created_at=now,
                last_login_at=now,
            )
        )


async def _membership(
    conn: AsyncConnection,
    spec: ProviderSpec,
    user_id: str,
    decision: RoleDecision,
    client: ClientInfo,
) -> str:
    """Join the workspace with the decided role; a member's role follows the provider's
    groups when a mapping decided it, except that the last owner is never demoted."""
    assert spec.workspace_id is not None and decision.role is not None
    workspace_id, role = spec.workspace_id, decision.role
    current = await conn.scalar(
        select(memberships.c.role).where(
            memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
        )
    )
    actor = Actor(kind="system", ip=client.ip, user_agent=client.user_agent)
    if current is None:
        await conn.execute(
            insert(memberships).values(
                workspace_id=workspace_id, user_id=user_id, role=role, created_at=utcnow()
            )
        )
        await audit.record(
            conn,
            actor,
            "member.sso_join",
            workspace_id=workspace_id,
            target_type="member",
            target_id=user_id,
            after={"role": role, "provider": spec.key, "groups": list(decision.groups[:50])},
        )
        return role
    if not decision.from_groups or role == current:
        return str(current)
    if current == "owner" and rank(role) < rank(current) and await _last_owner(conn, workspace_id):
        return str(current)
    await conn.execute(
        update(memberships)
        .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
        .values(role=role)
    )
    await audit.record(
        conn,
        actor,
        "member.role_change",
        workspace_id=workspace_id,
        target_type="member",
        target_id=user_id,
        before={"role": current},
        after={"role": role, "provider": spec.key, "groups": list(decision.groups[:50])},
    )
    return role


async def _last_owner(conn: AsyncConnection, workspace_id: str) -> bool:
    owners = await conn.scalar(
        select(func.count())
        .select_from(memberships)
        .where(memberships.c.workspace_id == workspace_id, memberships.c.role == "owner")
    )
    return (owners or 0) <= 1
