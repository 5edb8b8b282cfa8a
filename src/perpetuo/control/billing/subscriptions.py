"""A workspace's subscription state, from Stripe's subscription objects, whatever their order.

Stripe does not deliver events in order. The state kept is the one of the latest event by
Stripe's own clock (`created`); an older event changes nothing. When two events carry the
same second, the subscription is read back from Stripe (the object's own current state)
before either is applied. A canceled subscription is final: no later-arriving `updated`
brings it back, and the ending of an older subscription never touches a newer one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from perpetuo.config.billing import PlanConfig
from perpetuo.control.billing import accounts
from perpetuo.control.billing.catalog import Interval
from perpetuo.control.billing.service import Billing, Effects
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import billing_accounts

ENDED = frozenset({"canceled", "incomplete_expired", "unpaid"})
SERVING = frozenset({"active", "trialing", "past_due"})


def _stamp(seconds: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC) if seconds else None


def first_item(sub: dict[str, Any]) -> dict[str, Any]:
    items = ((sub.get("items") or {}).get("data")) or [{}]
    return items[0] or {}


def price_of(sub: dict[str, Any]) -> str | None:
    price = first_item(sub).get("price") or {}
    return price.get("id") if isinstance(price, dict) else price


def period_end(sub: dict[str, Any]) -> dt.datetime | None:
    # Since 2025 the period lives on the subscription's items.
    return _stamp(first_item(sub).get("current_period_end") or sub.get("current_period_end"))


async def current_state(
    billing: Billing, workspace_id: str | None, sub: dict[str, Any], created: int
) -> dict[str, Any]:
    """The subscription to apply: the event's, or Stripe's current one on a same-second tie."""
    if not workspace_id:
        return sub
    async with billing.db.connect() as conn:
        row = (
            await conn.execute(
                select(billing_accounts.c.subscription_id, billing_accounts.c.state_at).where(
                    billing_accounts.c.workspace_id == workspace_id
                )
            )
        ).first()
    if row is not None and row.subscription_id == sub.get("id") and row.state_at == created:
        return await billing.stripe.subscription(sub["id"])
    return sub


async def apply_subscription(
    conn: AsyncConnection,
    billing: Billing,
    effects: Effects,
    workspace_id: str,
    sub: dict[str, Any],
    created: int,
    plan: tuple[PlanConfig, Interval] | None,
) -> bool:
    """Record the subscription's state if it is the newest; True when applied."""
    acc = await accounts.account(conn, workspace_id, lock=True)
    status = sub.get("status") or "incomplete"
    if acc.subscription_id is not None and acc.subscription_id != sub.get("id"):
        if status in ENDED or (acc.subscription_status in SERVING and created < acc.state_at):
            return False  # an older subscription's news
    elif acc.subscription_id == sub.get("id") and (
        acc.subscription_status == "canceled" or created < acc.state_at
    ):
        return False
    values: dict[str, Any] = {
        "subscription_id": sub.get("id"),
        "subscription_status": status,
        "current_period_end": period_end(sub),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "state_at": created,
    }
    if sub.get("customer") and acc.customer_id is None:
        values["customer_id"] = sub["customer"]
    if plan is not None:
        values["plan_id"], values["interval"] = plan[0].id, plan[1]
    if status == "trialing":
        values.update(
            trial_status="active",
            trial_ends_at=_stamp(sub.get("trial_end")),
            trial_plan_id=plan[0].id if plan else acc.trial_plan_id,
        )
    elif status == "active" and acc.trial_status == "active":
        values["trial_status"] = "converted"
    if status in ("active", "trialing"):
        values["past_due_since"] = None
    await accounts.save(conn, workspace_id, **values)
    if status in SERVING and plan is not None:
        in_force = plan[0]
    elif status in ENDED:
        in_force = billing.catalog.plan(billing.config.free_plan)
        await accounts.save(conn, workspace_id, plan_id=billing.config.free_plan, interval=None)
    else:
        return True  # incomplete: nothing paid yet, the plan stays as it was
    if await accounts.apply_plan(conn, billing.config, workspace_id, in_force):
        effects.workspaces.add(workspace_id)
    return True
