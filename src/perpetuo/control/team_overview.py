"""Every team of a workspace at a glance (members, keys, spend this period) in a few queries,
whatever the number of teams: the Teams page lists them all at once."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.plane import ControlPlane
from perpetuo.control.teams import team_view
from perpetuo.limits.plans import ScopeLimits
from perpetuo.limits.windows import window_of
from perpetuo.store.schema import api_keys, memberships, teams, usage_rollups
from perpetuo.store.timeutil import iso


async def team_overview(
    plane: ControlPlane, actor: Actor, workspace_id: str
) -> list[dict[str, Any]]:
    """Each team with `members` and `keys` (counts: keys in the team, or without a team and
    owned by a member of it) and `spend` in its budget's current period, by name."""
    now = time.time()
    async with plane.db.connect() as conn:
        await require_role(conn, actor, workspace_id, Role.VIEWER)
        rows = (await conn.execute(select(teams).where(teams.c.workspace_id == workspace_id))).all()
        members = dict(
            (
                await conn.execute(
                    select(memberships.c.team_id, func.count())
                    .where(
                        memberships.c.workspace_id == workspace_id,
                        memberships.c.team_id.is_not(None),
                    )
                    .group_by(memberships.c.team_id)
                )
            ).all()
        )
        owner = memberships.alias("owner")
        counted_to = func.coalesce(api_keys.c.team_id, owner.c.team_id)
        keys = dict(
            (
                await conn.execute(
                    select(counted_to, func.count())
                    .select_from(
                        api_keys.outerjoin(
                            owner,
                            (owner.c.workspace_id == api_keys.c.workspace_id)
                            & (owner.c.user_id == api_keys.c.owner_id),
                        )
                    )
                    .where(api_keys.c.workspace_id == workspace_id, counted_to.is_not(None))
                    .group_by(counted_to)
                )
            ).all()
        )
        periods: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            periods[ScopeLimits.from_mapping(row.limits).period].append(row.id)
        spent: dict[str, int] = {}
        for period, team_ids in periods.items():
            window = window_of(period, now)
            query = (
                select(usage_rollups.c.value, func.sum(usage_rollups.c.cost_micros))
                .where(
                    usage_rollups.c.workspace_id == workspace_id,
                    usage_rollups.c.dim == "team",
                    usage_rollups.c.value.in_(team_ids),
                )
                .group_by(usage_rollups.c.value)
            )
            if window.start is not None:
                query = query.where(usage_rollups.c.bucket >= window.start)
            spent.update((await conn.execute(query)).all())
    out = []
    for row in rows:
        scope = ScopeLimits.from_mapping(row.limits)
        window = window_of(scope.period, now)
        spend = {
            "period": window.period,
            "period_start": iso(window.start),
            "spent_usd": int(spent.get(row.id) or 0) / 1_000_000,
            "budget_usd": scope.budget_usd,
        }
        out.append(
            {
                **team_view(row),
                "members": members.get(row.id, 0),
                "keys": keys.get(row.id, 0),
                "spend": spend,
            }
        )
    return sorted(out, key=lambda team: team["name"].lower())
