"""Names people recognise for the ids stored in logs and rollups: keys, credentials, users.

A workspace deployment's provider is its credential's id (`cred_...`); pages show the
credential's name instead.
"""

from __future__ import annotations

from sqlalchemy import select

from perpetuo.store.schema import api_keys, memberships, provider_credentials, users
from perpetuo.ui.context import WorkspacePage


async def alias_names(page: WorkspacePage) -> list[str]:
    """The aliases the workspace's keys may name: its own and the platform's."""
    state = await page.gateway.workspace_routes.get(page.id)
    return sorted({*page.gateway.table.aliases, *state.aliases})


async def key_names(page: WorkspacePage) -> dict[str, str]:
    query = select(api_keys.c.id, api_keys.c.name).where(api_keys.c.workspace_id == page.id)
    async with page.plane.db.connect() as conn:
        return {row.id: row.name for row in (await conn.execute(query)).all()}


async def provider_names(page: WorkspacePage) -> dict[str, str]:
    query = select(provider_credentials.c.id, provider_credentials.c.name).where(
        provider_credentials.c.workspace_id == page.id
    )
    async with page.plane.db.connect() as conn:
        return {row.id: row.name for row in (await conn.execute(query)).all()}


async def user_emails(page: WorkspacePage) -> dict[str, str]:
    query = (
        select(users.c.id, users.c.email)
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.workspace_id == page.id)
    )
    async with page.plane.db.connect() as conn:
        return {row.id: row.email for row in (await conn.execute(query)).all()}
