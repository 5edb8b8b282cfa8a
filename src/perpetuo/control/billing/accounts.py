"""A workspace's billing account row, and the plan it puts the workspace on.

The plan in force is written into the workspace's own settings (`plan`: the catalog plan's
limits tier, `limits`: the plan's numbers over it, `credits_required`), so the limits engine
enforces it exactly as it does a plan a platform administrator set, and every instance picks
it up through the usual workspace change notice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from perpetuo.config.billing import BillingConfig, PlanConfig
from perpetuo.control.workspace_routing import touch_routing
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import billing_accounts
from perpetuo.store.schema import workspaces
from perpetuo.store.timeutil import utcnow


async def account(conn: AsyncConnection, workspace_id: str, *, lock: bool = False) -> Any:
    """The workspace's billing row, made on first use."""
    now = utcnow()
    await conn.execute(
        conn.insert(billing_accounts)
        .values(
            workspace_id=workspace_id,
            cancel_at_period_end=False,
            state_at=0,
            auto_recharge=False,
            recharge_threshold_micros=0,
            recharge_amount_micros=0,
            recharge_armed=True,
            low_balance_armed=True,
            crossings=0,
            paused=False,
            trial_reminded=False,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["workspace_id"])
    )
    query = select(billing_accounts).where(billing_accounts.c.workspace_id == workspace_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await conn.execute(query)).one()


async def save(conn: AsyncConnection, workspace_id: str, **values: Any) -> None:
    await conn.execute(
        update(billing_accounts)
        .where(billing_accounts.c.workspace_id == workspace_id)
        .values(**values, updated_at=utcnow())
    )


async def workspace_of_customer(conn: AsyncConnection, customer_id: str | None) -> str | None:
    if not customer_id:
        return None
    return await conn.scalar(
        select(billing_accounts.c.workspace_id).where(billing_accounts.c.customer_id == customer_id)
    )


async def workspace_exists(conn: AsyncConnection, workspace_id: str | None) -> bool:
    if not workspace_id:
        return False
    found = await conn.scalar(select(workspaces.c.id).where(workspaces.c.id == workspace_id))
    return found is not None


async def apply_plan(
    conn: AsyncConnection,
    config: BillingConfig,
    workspace_id: str,
    plan: PlanConfig | None,
    *,
    require_credits: bool | None = None,
) -> bool:
    """Put the workspace on `plan` (None: no plan); True when its settings changed (the
    caller publishes the workspace change after commit)."""
    row = (
        await conn.execute(select(workspaces.c.settings).where(workspaces.c.id == workspace_id))
    ).first()
    if row is None:
        return False
    settings = dict(row.settings or {})
    before = dict(settings)
    if plan is None:
        settings.pop("plan", None)
        settings.pop("limits", None)
    else:
        settings["plan"] = plan.tier
        if plan.limits is not None:
            settings["limits"] = plan.limits.model_dump(exclude_none=True)
        else:
            settings.pop("limits", None)
    wanted = config.require_credits if require_credits is None else require_credits
    if wanted:
        settings["credits_required"] = True
    if settings == before:
        return False
    await conn.execute(
        update(workspaces)
        .where(workspaces.c.id == workspace_id)
        .values(settings=settings, updated_at=utcnow())
    )
    await touch_routing(conn, workspace_id)
    return True


async def require_credits(conn: AsyncConnection, workspace_id: str) -> bool:
    """Make the workspace spend credits (its plan untouched); True when that changed."""
    row = (
        await conn.execute(select(workspaces.c.settings).where(workspaces.c.id == workspace_id))
    ).first()
    if row is None or (row.settings or {}).get("credits_required"):
        return False
    await conn.execute(
        update(workspaces)
        .where(workspaces.c.id == workspace_id)
        .values(settings={**(row.settings or {}), "credits_required": True}, updated_at=utcnow())
    )
    await touch_routing(conn, workspace_id)
    return True
