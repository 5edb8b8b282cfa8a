"""Self-service through Stripe's hosted pages: Checkout for a subscription or a credit top-up,
and the customer portal (payment methods, invoices, cancellation).

Nothing is granted here: Checkout only starts a payment. Credits and plans change when the
signed webhook says the payment succeeded (control/billing/events.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from perpetuo.control import audit
from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.billing import accounts, coupons
from perpetuo.control.billing.catalog import Interval, price_usd
from perpetuo.control.billing.service import Billing
from perpetuo.control.billing.subscriptions import SERVING
from perpetuo.control.errors import conflict, invalid
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import billing_accounts
from perpetuo.store.schema import users, workspaces


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str = Field(max_length=64)
    interval: Literal["month", "year"] = "month"


class TopUpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_usd: float = Field(gt=0, le=1_000_000, description="Within the server's min and max")


def _url(billing: Billing, template: str, workspace_id: str) -> str:
    return billing.link(template.format(workspace_id=workspace_id))


async def customer(billing: Billing, actor: Actor, workspace_id: str) -> str:
    """The workspace's Stripe customer, made on first need (the idempotency key makes two
    concurrent first calls get the same one)."""
    async with billing.db.connect() as conn:
        found = await conn.scalar(
            select(billing_accounts.c.customer_id).where(
                billing_accounts.c.workspace_id == workspace_id
            )
        )
        if found:
            return found
        name = await conn.scalar(select(workspaces.c.name).where(workspaces.c.id == workspace_id))
        email = None
        if actor.user_id:
            email = await conn.scalar(select(users.c.email).where(users.c.id == actor.user_id))
    made = await billing.stripe.create_customer(workspace_id, email, name or workspace_id)
    async with billing.db.begin() as conn:
        await accounts.account(conn, workspace_id)
        await conn.execute(
            update(billing_accounts)
            .where(
                billing_accounts.c.workspace_id == workspace_id,
                billing_accounts.c.customer_id.is_(None),
            )
            .values(customer_id=made)
        )
        return await conn.scalar(
            select(billing_accounts.c.customer_id).where(
                billing_accounts.c.workspace_id == workspace_id
            )
        )


async def _admin(billing: Billing, actor: Actor, workspace_id: str) -> Any:
    async with billing.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        return await accounts.account(conn, workspace_id)


def priced_plan(billing: Billing, plan_id: str, interval: Interval) -> Any:
    plan = billing.catalog.plan(plan_id)
    if plan is None:
        raise invalid(f"No plan {plan_id!r} in the catalog.", "plan_id")
    if not price_usd(plan, interval):
        raise invalid(f"The plan {plan_id!r} has no {interval}ly price.", "interval")
    return plan


async def subscription_session(
    billing: Billing,
    actor: Actor,
    workspace_id: str,
    plan_id: str,
    interval: Interval,
    *,
    trial_days: int | None = None,
) -> dict[str, Any]:
    """A Checkout session for a subscription (with a trial when `trial_days`)."""
    acc = await _admin(billing, actor, workspace_id)
    plan = priced_plan(billing, plan_id, interval)
    if acc.subscription_status in SERVING:
        raise conflict("This workspace has a subscription; change its plan instead.", "plan_id")
    async with billing.db.connect() as conn:
        coupon = await coupons.pending_discount(conn, workspace_id, plan.id)
    customer_id = await customer(billing, actor, workspace_id)
    metadata = {"workspace_id": workspace_id, "plan_id": plan.id}
    if actor.user_id:
        metadata["user_id"] = actor.user_id
    subscription_data: dict[str, Any] = {"metadata": metadata}
    if trial_days:
        subscription_data["trial_period_days"] = trial_days
    params: dict[str, Any] = {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": workspace_id,
        "line_items": [{"price": await billing.catalog.price_id(plan, interval), "quantity": 1}],
        "success_url": _url(billing, billing.config.success_path, workspace_id),
        "cancel_url": _url(billing, billing.config.cancel_path, workspace_id),
        "metadata": {**metadata, **({"coupon_id": coupon[0]} if coupon else {})},
        "subscription_data": subscription_data,
    }
    if coupon:
        params["discounts"] = [{"coupon": coupon[1]}]
    if trial_days:
        params["payment_method_collection"] = "always"
    session = await billing.stripe.checkout(params)
    await _audit(billing, actor, workspace_id, "billing.checkout", session["id"], plan=plan.id)
    return {"object": "checkout_session", "id": session["id"], "url": session["url"]}


async def topup_session(
    billing: Billing, actor: Actor, workspace_id: str, amount_usd: float
) -> dict[str, Any]:
    """A Checkout session for credit: the card is saved for automatic recharges."""
    await _admin(billing, actor, workspace_id)
    bounds = billing.config.topup
    if not bounds.min_usd <= amount_usd <= bounds.max_usd:
        raise invalid(
            f"A top-up is between ${bounds.min_usd:g} and ${bounds.max_usd:g}.", "amount_usd"
        )
    amount_cents = round(amount_usd * 100)
    credits = str(amount_cents * 10_000)  # one dollar paid, one dollar of credit
    customer_id = await customer(billing, actor, workspace_id)
    metadata = {"workspace_id": workspace_id, "kind": "topup", "credits_micros": credits}
    session = await billing.stripe.checkout(
        {
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": workspace_id,
            "line_items": [
                {
                    "price_data": {
                        "currency": billing.config.currency,
                        "unit_amount": amount_cents,
                        "product_data": {"name": "Prepaid credit"},
                    },
                    "quantity": 1,
                }
            ],
            "payment_intent_data": {"metadata": metadata, "setup_future_usage": "off_session"},
            "invoice_creation": {"enabled": True},
            "metadata": metadata,
            "success_url": _url(billing, billing.config.success_path, workspace_id),
            "cancel_url": _url(billing, billing.config.cancel_path, workspace_id),
        }
    )
    await _audit(
        billing, actor, workspace_id, "billing.topup", session["id"], amount_usd=amount_usd
    )
    return {"object": "checkout_session", "id": session["id"], "url": session["url"]}


async def portal_session(billing: Billing, actor: Actor, workspace_id: str) -> dict[str, Any]:
    await _admin(billing, actor, workspace_id)
    customer_id = await customer(billing, actor, workspace_id)
    session = await billing.stripe.portal(
        customer_id, billing.link(f"/ui/w/{workspace_id}/billing")
    )
    return {"object": "portal_session", "url": session["url"]}


async def _audit(
    billing: Billing, actor: Actor, workspace_id: str, action: str, target: str, **after: Any
) -> None:
    async with billing.db.begin() as conn:
        await record(conn, actor, action, workspace_id, target, after)


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    workspace_id: str,
    target: str | None,
    after: dict[str, Any] | None,
) -> None:
    await audit.record(
        conn,
        actor,
        action,
        workspace_id=workspace_id,
        target_type="billing",
        target_id=target,
        after=after,
    )
