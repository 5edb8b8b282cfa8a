"""Platform administration of accounts: list every user, disable and re-enable them.

Only platform super-administrators (or the master key) may. Disabling ends every session
of the account at once and stops its API keys on every instance (they answer 403
`key_owner_disabled`); its workspaces, memberships and keys are kept for when it is enabled.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from perpetuo.control import audit, sessions
from perpetuo.control.accounts import normalize_email, user_view
from perpetuo.control.actor import Actor
from perpetuo.control.api_keys import owner_changed
from perpetuo.control.errors import forbidden, invalid, not_found
from perpetuo.control.plane import ControlPlane
from perpetuo.store.pagination import Page, newest_first, to_page
from perpetuo.store.repos.api_keys import touch_owned
from perpetuo.store.schema import users
from perpetuo.store.timeutil import utcnow


def require_superadmin(actor: Actor) -> None:
    if not actor.is_superadmin:
        raise forbidden("This needs a platform super-administrator.")


async def list_users(
    plane: ControlPlane, actor: Actor, *, limit: int, cursor: str | None, email: str | None = None
) -> Page:
    require_superadmin(actor)
    query = select(users)
    if email:
        query = query.where(users.c.email == normalize_email(email))
    async with plane.db.connect() as conn:
        return to_page((await conn.execute(newest_first(query, users, cursor, limit))).all(), limit)


async def set_disabled(
    plane: ControlPlane, actor: Actor, user_id: str, disabled: bool
) -> dict[str, Any]:
    require_superadmin(actor)
    if disabled and user_id == actor.user_id:
        raise invalid("You cannot disable your own account.", "user_id")
    async with plane.db.begin() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        if row is None:
            raise not_found("User")
        if (row.disabled_at is not None) == disabled:
            return user_view(row)  # already so: nothing changes, nothing to audit
        await conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(disabled_at=utcnow() if disabled else None)
        )
        ended = await sessions.revoke_all(conn, user_id) if disabled else 0
        keys = await touch_owned(conn, user_id)
        after = user_view((await conn.execute(select(users).where(users.c.id == user_id))).first())
        await audit.record(
            conn,
            actor,
            "user.disable" if disabled else "user.enable",
            workspace_id=None,
            target_type="user",
            target_id=user_id,
            before=user_view(row),
            after={**after, "sessions_revoked": ended, "api_keys_affected": len(keys)},
        )
    await owner_changed(plane, keys)
    return after
