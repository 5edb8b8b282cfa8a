"""Names people recognise for the ids stored in logs and rollups: keys, credentials, users,
teams.

A workspace deployment's provider is its credential's id (`cred_...`); pages show the
credential's name instead. Providers of the built-in demo type (`type: demo`: canned
answers, no real model) carry DEMO_LABEL wherever a page names them.
"""

from __future__ import annotations

from sqlalchemy import select

from perpetuo.providers.registry import DEMO
from perpetuo.routing.table import Alias
from perpetuo.schema.endpoints import Endpoint
from perpetuo.store.schema import api_keys, memberships, provider_credentials, teams, users
from perpetuo.ui.context import WorkspacePage

DEMO_LABEL = "demo provider"


async def served_aliases(page: WorkspacePage) -> dict[str, Alias]:
    """The aliases the workspace's keys may name: the platform's, its own in their place."""
    state = await page.gateway.workspace_routes.get(page.id)
    return {**page.gateway.table.aliases, **state.aliases}


async def alias_names(page: WorkspacePage) -> list[str]:
    return sorted(await served_aliases(page))


def is_demo(alias: Alias) -> bool:
    """Some deployment of the alias is answered by the demo provider."""
    return any(d.target.provider_type == DEMO for d in alias.deployments)


async def chat_aliases(page: WorkspacePage) -> list[tuple[str, str]]:
    """Aliases that serve chat (as /v1/models reports them), labelled for a select."""
    served = await served_aliases(page)
    return [
        (name, f"{name} ({DEMO_LABEL})" if is_demo(alias) else name)
        for name, alias in sorted(served.items())
        if Endpoint.CHAT in alias.endpoints
    ]


async def demo_providers(page: WorkspacePage) -> set[str]:
    served = await served_aliases(page)
    return {
        d.provider for a in served.values() for d in a.deployments if d.target.provider_type == DEMO
    }


async def key_names(page: WorkspacePage) -> dict[str, str]:
    query = select(api_keys.c.id, api_keys.c.name).where(api_keys.c.workspace_id == page.id)
    async with page.plane.db.connect() as conn:
        return {row.id: row.name for row in (await conn.execute(query)).all()}


async def provider_names(page: WorkspacePage) -> dict[str, str]:
    """Credential names by id, and demo providers labelled as such."""
    query = select(provider_credentials.c.id, provider_credentials.c.name).where(
        provider_credentials.c.workspace_id == page.id
    )
    async with page.plane.db.connect() as conn:
        names = {row.id: row.name for row in (await conn.execute(query)).all()}
    for provider in await demo_providers(page):
        names[provider] = f"{names.get(provider, provider)} ({DEMO_LABEL})"
    return names


async def user_emails(page: WorkspacePage) -> dict[str, str]:
    query = (
        select(users.c.id, users.c.email)
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.workspace_id == page.id)
    )
    async with page.plane.db.connect() as conn:
        return {row.id: row.email for row in (await conn.execute(query)).all()}


async def team_names(page: WorkspacePage) -> dict[str, str]:
    query = select(teams.c.id, teams.c.name).where(teams.c.workspace_id == page.id)
    async with page.plane.db.connect() as conn:
        return {row.id: row.name for row in (await conn.execute(query)).all()}
