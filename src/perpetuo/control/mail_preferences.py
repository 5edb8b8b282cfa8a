"""Which non-transactional mails a person gets, and unsubscribing from a mail's link.

Every category is on until the person turns it off, in the dashboard, through the admin API,
or with the signed link at the bottom of each such mail (no sign-in: the link itself is the
credential, and it can only ever turn mail off).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from perpetuo.control import audit
from perpetuo.control.actor import Actor
from perpetuo.control.errors import forbidden, invalid
from perpetuo.control.mail.catalog import CATEGORIES
from perpetuo.control.mail.unsubscribe import (
    ALL,
    opted_out,
    preferences_view,
    read_token,
    set_opted_out,
)
from perpetuo.control.plane import ControlPlane
from perpetuo.store.schema import users


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    categories: Annotated[dict[str, bool], Field(max_length=len(CATEGORIES))] = Field(
        description="Category id -> whether to get its mails (ids: "
        + ", ".join(CATEGORIES)
        + "); categories left out keep their setting"
    )


async def preferences(plane: ControlPlane, actor: Actor) -> dict[str, Any]:
    if actor.user_id is None:
        raise forbidden("The master key gets no mail.")
    async with plane.db.connect() as conn:
        return preferences_view(await opted_out(conn, actor.user_id))


async def update_preferences(
    plane: ControlPlane, actor: Actor, spec: PreferencesUpdate
) -> dict[str, Any]:
    if actor.user_id is None:
        raise forbidden("The master key gets no mail.")
    unknown = set(spec.categories) - set(CATEGORIES)
    if unknown:
        raise invalid(
            f"Unknown mail categories: {', '.join(sorted(unknown))}; known: "
            + ", ".join(CATEGORIES),
            "categories",
        )
    async with plane.db.begin() as conn:
        before = set(await opted_out(conn, actor.user_id))
        after = (before | {c for c, on in spec.categories.items() if not on}) - {
            c for c, on in spec.categories.items() if on
        }
        stored = await set_opted_out(conn, actor.user_id, after)
        if after != before:
            await audit.record(
                conn,
                actor,
                "user.mail_preferences",
                workspace_id=None,
                target_type="user",
                target_id=actor.user_id,
                before={"opted_out": sorted(before)},
                after={"opted_out": stored},
            )
    return preferences_view(stored)


async def unsubscribe(plane: ControlPlane, token: str, actor: Actor) -> dict[str, Any]:
    """Turn off the category a mail's link names (or all of them) for its recipient."""
    found = read_token(plane.mail.unsubscribe_signing_key, token)
    if found is None:
        raise invalid("This unsubscribe link is not valid: copy the whole address.", "token")
    user_id, category = found
    async with plane.db.begin() as conn:
        exists = await conn.scalar(select(users.c.id).where(users.c.id == user_id))
        if exists is None:
            raise invalid("This unsubscribe link is not valid: copy the whole address.", "token")
        before = set(await opted_out(conn, user_id))
        after = set(CATEGORIES) if category == ALL else before | {category}
        stored = await set_opted_out(conn, user_id, after)
        if after != before:
            await audit.record(
                conn,
                Actor(kind="user", user_id=user_id, ip=actor.ip, user_agent=actor.user_agent),
                "user.mail_unsubscribe",
                workspace_id=None,
                target_type="user",
                target_id=user_id,
                before={"opted_out": sorted(before)},
                after={"opted_out": stored},
            )
    label = "all mail that can be turned off" if category == ALL else CATEGORIES[category]
    return {**preferences_view(stored), "unsubscribed": category, "unsubscribed_label": label}
