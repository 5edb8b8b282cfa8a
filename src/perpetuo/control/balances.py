"""What an API key may still spend, and what its workspace has left, for the people who pay.

Figures come from the limits engine's live counters where they exist (the same numbers
admission checks against, other instances' usage included when they are in Redis), else
from the store: hourly usage rollups and the credit ledger. Only GET /v1/key and
GET /v1/credits read these; the chat path never does.
"""

from __future__ import annotations

import time
from typing import Any

from perpetuo.auth.principal import Principal
from perpetuo.limits.engine import LimitEngine
from perpetuo.limits.planning import counter_key, credit_key
from perpetuo.limits.plans import ScopeLimits, WorkspaceLimits
from perpetuo.limits.windows import Window, window_of
from perpetuo.store.database import Database
from perpetuo.store.repos import api_keys as key_rows
from perpetuo.store.repos import credits as credit_rows
from perpetuo.store.repos.usage_sums import usage_sums
from perpetuo.store.timeutil import iso

USD = 1_000_000


async def _used(
    db: Database, engine: LimitEngine, principal: Principal, kind: str, window: Window
) -> int:
    """Tokens (kind "tok") or micro-USD (kind "usd") the key used in the window."""
    assert principal.workspace_id is not None and principal.key_id is not None
    key = counter_key(principal.workspace_id, kind, "key", principal.key_id, window)
    live = await engine.window_state(key)
    if live is not None:
        return max(0, live[0])
    async with db.connect() as conn:
        tokens, cost = await usage_sums(
            conn, principal.workspace_id, "key", principal.key_id, window.start, window.end
        )
    return tokens if kind == "tok" else cost


async def describe_key(db: Database, engine: LimitEngine, principal: Principal) -> dict[str, Any]:
    """The calling key: its name, limits, spend so far and what is left of its budget (the
    shape of OpenRouter's GET /api/v1/key, plus Perpetuo's own limits)."""
    if principal.key_id is None or principal.workspace_id is None:  # the master key
        return {
            "label": "master key",
            "name": "master key",
            "id": None,
            "workspace_id": principal.workspace_id,
            "limit": None,
            "limit_remaining": None,
            "limit_reset": None,
            "usage": None,
            "is_free_tier": False,
            "rate_limit": None,
            "quotas": {},
        }
    async with db.connect() as conn:
        row = await key_rows.get(conn, principal.workspace_id, principal.key_id)
    limits = ScopeLimits.from_mapping(principal.limits)
    now = time.time()
    budget_window = window_of(limits.period if limits.budget_usd else "total", now)
    spent = await _used(db, engine, principal, "usd", budget_window)
    budget = round(limits.budget_usd * USD) if limits.budget_usd else None
    quotas: dict[str, Any] = {}
    for period, quota in (("daily", limits.daily_tokens), ("monthly", limits.monthly_tokens)):
        if quota:
            used = await _used(db, engine, principal, "tok", window_of(period, now))
            quotas[f"{period}_tokens"] = {
                "limit": quota,
                "used": used,
                "remaining": max(0, quota - used),
            }
    return {
        "label": f"{row.prefix}…{row.last4}" if row is not None else principal.key_id,
        "name": row.name if row is not None else None,
        "id": principal.key_id,
        "workspace_id": principal.workspace_id,
        "limit": budget / USD if budget is not None else None,
        "limit_remaining": max(0, budget - spent) / USD if budget is not None else None,
        "limit_reset": budget_window.period if budget is not None else None,
        "usage": spent / USD,  # in the budget period; all time when the key has no budget
        "period_start": iso(budget_window.start),
        "period_end": iso(budget_window.end),
        "budget_soft_usd": limits.budget_soft_usd,
        "is_free_tier": False,
        "expires_at": iso(row.expires_at) if row is not None else None,
        "rate_limit": {"requests": limits.rpm, "tokens": limits.tpm, "interval": "1m"},
        "max_parallel": limits.max_parallel,
        "quotas": quotas,
    }


async def describe_credits(
    db: Database, engine: LimitEngine, workspace_id: str, workspace: WorkspaceLimits
) -> dict[str, Any]:
    """The workspace's prepaid credit: granted, used, left (the shape of OpenRouter's
    GET /api/v1/credits, plus `remaining`)."""
    async with db.connect() as conn:
        granted, used = await credit_rows.totals(conn, workspace_id)
    if engine.ledger is not None:
        used += engine.ledger.pending(workspace_id)  # settled here, not yet in the ledger
    live = await engine.window_state(credit_key(workspace_id))
    remaining = -live[0] if live is not None else granted - used  # the counter holds -balance
    return {
        "workspace_id": workspace_id,
        "total_credits": granted / USD,
        "total_usage": (granted - remaining) / USD,
        "remaining": remaining / USD,
        "credits_required": workspace.credits_required,
    }
