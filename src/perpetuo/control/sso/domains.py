"""E-mail domains verified for a workspace, by a platform administrator only: a verified
domain lets the workspace's own identity provider vouch for every address in it, accounts
that exist already included, so only the platform may grant that. A domain belongs to one
workspace at most.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from perpetuo.config.sso import normalize_domain
from perpetuo.control import audit
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.errors import conflict, forbidden, invalid, not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.store.sso_tables import sso_domains
from perpetuo.store.timeutil import iso, utcnow


def domain_view(row: Any) -> dict[str, Any]:
    return {
        "object": "sso_domain",
        "domain": row.domain,
        "workspace_id": row.workspace_id,
        "verified_at": iso(row.verified_at),
        "verified_by": row.verified_by,
    }


def _domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except ValueError as exc:
        raise invalid(str(exc), "domain") from None


def _platform_only(actor: Actor) -> None:
    if not actor.is_superadmin:
        raise forbidden("Only a platform administrator verifies a workspace's domains.")


async def list_domains(plane: ControlPlane, actor: Actor, workspace_id: str) -> list[dict]:
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        rows = (
            await conn.execute(
                select(sso_domains)
                .where(sso_domains.c.workspace_id == workspace_id)
                .order_by(sso_domains.c.domain)
            )
        ).all()
    return [domain_view(row) for row in rows]


async def verify_domain(
    plane: ControlPlane, actor: Actor, workspace_id: str, domain: str
) -> dict[str, Any]:
    try:
        async with plane.db.begin() as conn:
            await require_role(conn, actor, workspace_id, Role.VIEWER)  # 404 for no workspace
            _platform_only(actor)
            domain = _domain(domain)  # who may comes before what the request says
            row = (
                await conn.execute(select(sso_domains).where(sso_domains.c.domain == domain))
            ).first()
            if row is not None and row.workspace_id != workspace_id:
                raise conflict(f"The domain {domain} is verified for another workspace.", "domain")
            if row is None:
                await conn.execute(
                    insert(sso_domains).values(
                        domain=domain,
                        workspace_id=workspace_id,
                        verified_by=actor.user_id,
                        verified_at=utcnow(),
                    )
                )
                row = (
                    await conn.execute(select(sso_domains).where(sso_domains.c.domain == domain))
                ).first()
                await audit.record(
                    conn,
                    actor,
                    "sso_domain.verify",
                    workspace_id=workspace_id,
                    target_type="sso_domain",
                    target_id=domain,
                    after=domain_view(row),
                )
    except IntegrityError:  # verified for another workspace at the same moment
        raise conflict(
            f"The domain {domain} is verified for another workspace.", "domain"
        ) from None
    return domain_view(row)


async def unverify_domain(
    plane: ControlPlane, actor: Actor, workspace_id: str, domain: str
) -> None:
    async with plane.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.VIEWER)
        _platform_only(actor)
        domain = _domain(domain)
        row = (
            await conn.execute(
                select(sso_domains).where(
                    sso_domains.c.domain == domain, sso_domains.c.workspace_id == workspace_id
                )
            )
        ).first()
        if row is None:
            raise not_found("Verified domain")
        await conn.execute(delete(sso_domains).where(sso_domains.c.domain == domain))
        await audit.record(
            conn,
            actor,
            "sso_domain.unverify",
            workspace_id=workspace_id,
            target_type="sso_domain",
            target_id=domain,
            before=domain_view(row),
        )
