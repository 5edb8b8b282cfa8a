"""Changing a subscription: upgrade or downgrade (Stripe prorates, and bills the difference at
once so the upgrade's share of credits follows the payment), cancel at the period's end, and
take a cancellation back. The workspace's own state changes when Stripe's
`customer.subscription.updated` arrives, as for changes made in the customer portal.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from perpetuo.control.actor import Actor
from perpetuo.control.billing.checkout import _admin, _audit, priced_plan
from perpetuo.control.billing.service import Billing
from perpetuo.control.billing.subscriptions import SERVING, first_item
from perpetuo.control.errors import conflict, invalid


class PlanChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str = Field(max_length=64)
    interval: Literal["month", "year"] = "month"


async def _subscribed(billing: Billing, actor: Actor, workspace_id: str) -> Any:
    acc = await _admin(billing, actor, workspace_id)
    if acc.subscription_id is None or acc.subscription_status not in SERVING:
        raise conflict("This workspace has no subscription; subscribe through Checkout first.")
    return acc


async def change_plan(
    billing: Billing, actor: Actor, workspace_id: str, spec: PlanChange
) -> dict[str, Any]:
    acc = await _subscribed(billing, actor, workspace_id)
    target = billing.catalog.plan(spec.plan_id)
    if target is None:
        raise invalid(f"No plan {spec.plan_id!r} in the catalog.", "plan_id")
    if target.free:  # going free is ending the paid plan when its period ends
        return await set_cancel(billing, actor, workspace_id, True)
    plan = priced_plan(billing, spec.plan_id, spec.interval)
    if acc.plan_id == plan.id and acc.interval == spec.interval:
        raise conflict("The workspace is on this plan already.", "plan_id")
    sub = await billing.stripe.subscription(acc.subscription_id)
    item = first_item(sub)
    updated = await billing.stripe.update_subscription(
        acc.subscription_id,
        {
            "items": [
                {"id": item["id"], "price": await billing.catalog.price_id(plan, spec.interval)}
            ],
            "proration_behavior": "always_invoice",
            "cancel_at_period_end": False,
            "metadata": {"workspace_id": workspace_id, "plan_id": plan.id},
        },
    )
    await _audit(
        billing,
        actor,
        workspace_id,
        "billing.plan_change",
        acc.subscription_id,
        plan=plan.id,
        interval=spec.interval,
        previous=acc.plan_id,
    )
    return {
        "object": "subscription",
        "id": updated.get("id"),
        "status": updated.get("status"),
        "plan_id": plan.id,
        "interval": spec.interval,
    }


async def set_cancel(
    billing: Billing, actor: Actor, workspace_id: str, cancel: bool
) -> dict[str, Any]:
    acc = await _subscribed(billing, actor, workspace_id)
    updated = await billing.stripe.update_subscription(
        acc.subscription_id, {"cancel_at_period_end": cancel}
    )
    action = "billing.cancel" if cancel else "billing.resume"
    await _audit(billing, actor, workspace_id, action, acc.subscription_id)
    return {
        "object": "subscription",
        "id": updated.get("id"),
        "status": updated.get("status"),
        "cancel_at_period_end": bool(updated.get("cancel_at_period_end")),
    }
