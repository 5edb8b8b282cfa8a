"""What a team or a member spent in their budget's current period, for the dashboard and API.

Read from the hourly usage rollups (as budget counters are seeded), so it trails the live
counters by the request-log writer's batch interval.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from perpetuo.limits.plans import ScopeLimits
from perpetuo.limits.windows import window_of
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.repos.usage_sums import usage_sums
from perpetuo.store.timeutil import iso


async def period_spend(
    conn: AsyncConnection,
    workspace_id: str,
    dim: Literal["team", "user"],
    value: str,
    limits: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Spend and tokens in the current budget period (monthly when no budget is set)."""
    scope = ScopeLimits.from_mapping(limits)
    window = window_of(scope.period, time.time())
    tokens, cost = await usage_sums(conn, workspace_id, dim, value, window.start, window.end)
    return {
        "period": window.period,
        "period_start": iso(window.start),
        "spent_usd": cost / 1_000_000,
        "tokens": tokens,
        "budget_usd": scope.budget_usd,
    }
