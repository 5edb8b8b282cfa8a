"""What each Stripe event does. A handler has two halves: `prepare` reads whatever else it
needs from Stripe before any transaction is open (a subscription's current state, the
PaymentIntent that paid an invoice, a card's fingerprint), and `apply` writes, inside the
transaction that claims the event id, so an event is applied entirely or not at all.

Money moves only on payments that succeeded (`checkout.session.completed` with a paid
session, `invoice.paid`, `payment_intent.succeeded`), keyed by the PaymentIntent, so the two
or three events Stripe sends for one payment credit it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from perpetuo.control.billing import accounts, money, referrals, subscriptions
from perpetuo.control.billing.catalog import included_micros, price_usd
from perpetuo.control.billing.notices import after_clawback, payment_failed, receipt
from perpetuo.control.billing.service import Billing, Effects
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import billing_accounts, billing_payments
from perpetuo.store.timeutil import utcnow


@dataclass
class Context:
    conn: AsyncConnection
    billing: Billing
    effects: Effects
    event: dict[str, Any]

    @property
    def cause(self) -> str:
        return self.event["id"]

    @property
    def created(self) -> int:
        return int(self.event.get("created") or 0)


Prepare = Callable[[Billing, dict[str, Any]], Awaitable[dict[str, Any]]]
Apply = Callable[[Context, dict[str, Any]], Awaitable[str | None]]


def obj(event: dict[str, Any]) -> dict[str, Any]:
    return event["data"]["object"]


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


async def workspace_for(
    conn: AsyncConnection, customer: Any, metadata: dict[str, Any] | None = None
) -> str | None:
    """The workspace an object belongs to: its customer's, else the one its metadata names
    (and that exists: metadata is ours, but an old workspace may be gone)."""
    found = await accounts.workspace_of_customer(conn, _id(customer))
    if found:
        return found
    named = (metadata or {}).get("workspace_id")
    return named if await accounts.workspace_exists(conn, named) else None


async def _fingerprint_of_intent(billing: Billing, payment_intent: str | None) -> str | None:
    if not payment_intent:
        return None
    intent = await billing.stripe.payment_intent(payment_intent)
    return await billing.stripe.fingerprint(_id(intent.get("payment_method")))


async def _nothing(billing: Billing, event: dict[str, Any]) -> dict[str, Any]:
    return {}


# -- checkout ----------------------------------------------------------------------------------


async def prepare_checkout(billing: Billing, event: dict[str, Any]) -> dict[str, Any]:
    session = obj(event)
    if session.get("mode") == "subscription" and session.get("subscription"):
        sub = await billing.stripe.subscription(_id(session["subscription"]) or "")
        plan = await billing.catalog.plan_of_price(subscriptions.price_of(sub))
        fingerprint = await billing.stripe.fingerprint(_id(sub.get("default_payment_method")))
        return {"subscription": sub, "plan": plan, "fingerprint": fingerprint}
    if session.get("mode") == "payment" and session.get("payment_status") == "paid":
        return {
            "fingerprint": await _fingerprint_of_intent(billing, _id(session["payment_intent"]))
        }
    return {}


async def apply_checkout(ctx: Context, prepared: dict[str, Any]) -> str | None:
    session = obj(ctx.event)
    metadata = session.get("metadata") or {}
    workspace_id = session.get("client_reference_id") or metadata.get("workspace_id")
    if not await accounts.workspace_exists(ctx.conn, workspace_id):
        return None
    acc = await accounts.account(ctx.conn, workspace_id)
    if acc.customer_id is None and session.get("customer"):
        await accounts.save(ctx.conn, workspace_id, customer_id=_id(session["customer"]))
    if "subscription" in prepared:
        from perpetuo.control.billing import coupons, trials

        sub = prepared["subscription"]
        await subscriptions.apply_subscription(
            ctx.conn, ctx.billing, ctx.effects, workspace_id, sub, ctx.created, prepared["plan"]
        )
        await coupons.mark_used(ctx.conn, workspace_id, metadata.get("coupon_id"))
        if sub.get("status") == "trialing":
            await trials.claim_card(ctx, workspace_id, sub, prepared.get("fingerprint"))
        return workspace_id
    if session.get("mode") == "payment" and session.get("payment_status") == "paid":
        payment = money.Payment(
            id=_id(session["payment_intent"]) or session["id"],
            workspace_id=workspace_id,
            kind="topup",
            amount_cents=int(session.get("amount_total") or 0),
            credits_micros=int(metadata.get("credits_micros") or 0),
            fingerprint=prepared.get("fingerprint"),
            description="Credit top-up",
        )
        await credit_paid(ctx, payment)
    return workspace_id


async def credit_paid(ctx: Context, payment: money.Payment) -> None:
    if not await money.credit_payment(ctx.conn, ctx.effects.moves, payment, ctx.cause):
        return
    await receipt(ctx.conn, ctx.billing, payment)
    acc = await accounts.account(ctx.conn, payment.workspace_id)
    if acc.paused and await money.balance(ctx.conn, payment.workspace_id) >= 0:
        await accounts.save(ctx.conn, payment.workspace_id, paused=False)
    if acc.first_payment_at is None:
        first = await ctx.conn.execute(
            billing_accounts.update()
            .where(
                billing_accounts.c.workspace_id == payment.workspace_id,
                billing_accounts.c.first_payment_at.is_(None),
            )
            .values(first_payment_at=utcnow())
        )
        if first.rowcount == 1:
            await referrals.on_first_payment(ctx, payment)


# -- invoices (subscriptions) ----------------------------------------------------------------


async def prepare_invoice_paid(billing: Billing, event: dict[str, Any]) -> dict[str, Any]:
    invoice = obj(event)
    if int(invoice.get("amount_paid") or 0) <= 0:
        return {}
    intent = await billing.stripe.invoice_payment_intent(invoice["id"])
    lines = (invoice.get("lines") or {}).get("data") or []
    plan = None
    for line in lines:
        details = ((line.get("pricing") or {}).get("price_details")) or {}
        plan = await billing.catalog.plan_of_price(_id(details.get("price"))) or plan
    if plan is None:
        parent = (invoice.get("parent") or {}).get("subscription_details") or {}
        named = billing.catalog.plan((parent.get("metadata") or {}).get("plan_id"))
        plan = (named, "month") if named else None
    return {
        "intent": intent,
        "plan": plan,
        "fingerprint": await _fingerprint_of_intent(billing, intent),
    }


def invoice_credits(invoice: dict[str, Any], plan: Any) -> int:
    """Credits follow money: a full period's price gives the plan's included credits, a
    prorated upgrade its share; discounts do not reduce them (the subtotal is before them)."""
    if plan is None:
        return 0
    config, interval = plan
    price = price_usd(config, interval) or 0.0
    subtotal = int(invoice.get("subtotal") or 0)
    if price <= 0 or subtotal <= 0:
        return 0
    full = included_micros(config, interval)
    return min(full, full * subtotal // round(price * 100))


async def apply_invoice_paid(ctx: Context, prepared: dict[str, Any]) -> str | None:
    invoice = obj(ctx.event)
    workspace_id = await workspace_for(ctx.conn, invoice.get("customer"))
    if workspace_id is None:
        return None
    acc = await accounts.account(ctx.conn, workspace_id)
    if acc.past_due_since is not None:
        await accounts.save(ctx.conn, workspace_id, past_due_since=None)
        plan = ctx.billing.catalog.plan(acc.plan_id)
        serving = acc.subscription_status in subscriptions.SERVING and plan is not None
        if serving and await accounts.apply_plan(ctx.conn, ctx.billing.config, workspace_id, plan):
            ctx.effects.workspaces.add(workspace_id)
    if not prepared.get("intent"):
        return workspace_id
    payment = money.Payment(
        id=prepared["intent"],
        workspace_id=workspace_id,
        kind="subscription",
        amount_cents=int(invoice.get("amount_paid") or 0),
        credits_micros=invoice_credits(invoice, prepared.get("plan")),
        invoice_id=invoice["id"],
        fingerprint=prepared.get("fingerprint"),
        description=f"Plan {prepared['plan'][0].name}" if prepared.get("plan") else "Plan",
    )
    await credit_paid(ctx, payment)
    return workspace_id


async def apply_invoice_failed(ctx: Context, prepared: dict[str, Any]) -> str | None:
    invoice = obj(ctx.event)
    workspace_id = await workspace_for(ctx.conn, invoice.get("customer"))
    if workspace_id is None:
        return None
    acc = await accounts.account(ctx.conn, workspace_id)
    if acc.past_due_since is None:
        await accounts.save(ctx.conn, workspace_id, past_due_since=utcnow())
    await payment_failed(
        ctx.conn,
        ctx.billing,
        workspace_id,
        int(invoice.get("amount_due") or 0),
        "",
        f"{invoice['id']}:{invoice.get('attempt_count') or 0}",
    )
    return workspace_id


# -- subscriptions ---------------------------------------------------------------------------


async def prepare_subscription(billing: Billing, event: dict[str, Any]) -> dict[str, Any]:
    sub = obj(event)
    async with billing.db.connect() as conn:
        workspace_id = await workspace_for(conn, sub.get("customer"), sub.get("metadata"))
    sub = await subscriptions.current_state(billing, workspace_id, sub, int(event["created"]))
    return {
        "subscription": sub,
        "plan": await billing.catalog.plan_of_price(subscriptions.price_of(sub)),
    }


async def apply_subscription_event(ctx: Context, prepared: dict[str, Any]) -> str | None:
    sub = prepared["subscription"]
    workspace_id = await workspace_for(ctx.conn, sub.get("customer"), sub.get("metadata"))
    if workspace_id is None:
        return None
    await subscriptions.apply_subscription(
        ctx.conn, ctx.billing, ctx.effects, workspace_id, sub, ctx.created, prepared["plan"]
    )
    return workspace_id


# -- one-off payments (auto-recharge; top-ups also come through checkout) ---------------------


async def prepare_intent(billing: Billing, event: dict[str, Any]) -> dict[str, Any]:
    intent = obj(event)
    return {"fingerprint": await billing.stripe.fingerprint(_id(intent.get("payment_method")))}


async def apply_intent_succeeded(ctx: Context, prepared: dict[str, Any]) -> str | None:
    intent = obj(ctx.event)
    metadata = intent.get("metadata") or {}
    if metadata.get("kind") not in ("topup", "recharge"):
        return None  # subscription payments are credited by their invoice
    workspace_id = await workspace_for(ctx.conn, intent.get("customer"), metadata)
    if workspace_id is None:
        return None
    payment = money.Payment(
        id=intent["id"],
        workspace_id=workspace_id,
        kind=metadata["kind"],
        amount_cents=int(intent.get("amount_received") or intent.get("amount") or 0),
        credits_micros=int(metadata.get("credits_micros") or 0),
        fingerprint=prepared.get("fingerprint"),
        description="Automatic recharge" if metadata["kind"] == "recharge" else "Credit top-up",
    )
    await credit_paid(ctx, payment)
    return workspace_id


async def apply_intent_failed(ctx: Context, prepared: dict[str, Any]) -> str | None:
    intent = obj(ctx.event)
    metadata = intent.get("metadata") or {}
    if metadata.get("kind") != "recharge":
        return None  # a customer at Checkout sees the failure there
    workspace_id = await workspace_for(ctx.conn, intent.get("customer"), metadata)
    if workspace_id is None:
        return None
    await accounts.save(ctx.conn, workspace_id, recharge_failed_at=utcnow())
    error = intent.get("last_payment_error") or {}
    await payment_failed(
        ctx.conn,
        ctx.billing,
        workspace_id,
        int(intent.get("amount") or 0),
        str(error.get("message") or "")[:200],
        str(metadata.get("attempt") or intent["id"]),  # a recharge's key: mailed once
    )
    return workspace_id


# -- refunds and disputes --------------------------------------------------------------------


async def _payment_workspace(ctx: Context, payment_id: str | None, customer: Any) -> str | None:
    if payment_id:
        found = await ctx.conn.scalar(
            select(billing_payments.c.workspace_id).where(billing_payments.c.id == payment_id)
        )
        if found:
            return found
    return await workspace_for(ctx.conn, customer)


async def apply_refund(ctx: Context, prepared: dict[str, Any]) -> str | None:
    charge = obj(ctx.event)
    payment_id = _id(charge.get("payment_intent"))
    workspace_id = await _payment_workspace(ctx, payment_id, charge.get("customer"))
    if workspace_id is None or payment_id is None:
        return None
    await money.record_refund(
        ctx.conn,
        ctx.effects.moves,
        workspace_id,
        payment_id,
        int(charge.get("amount") or 0),
        int(charge.get("amount_refunded") or 0),
        ctx.cause,
    )
    await after_clawback(ctx.conn, ctx.billing, ctx.effects, workspace_id)
    return workspace_id


async def prepare_dispute(billing: Billing, event: dict[str, Any]) -> dict[str, Any]:
    dispute = obj(event)
    payment_id = _id(dispute.get("payment_intent"))
    if not payment_id:
        return {}
    intent = await billing.stripe.payment_intent(payment_id)
    return {"customer": intent.get("customer"), "amount": intent.get("amount")}


async def apply_dispute(ctx: Context, prepared: dict[str, Any]) -> str | None:
    dispute = obj(ctx.event)
    payment_id = _id(dispute.get("payment_intent"))
    workspace_id = await _payment_workspace(ctx, payment_id, prepared.get("customer"))
    if workspace_id is None or payment_id is None:
        return None
    held = 0 if dispute.get("status") in ("won", "warning_closed") else int(dispute["amount"])
    await money.record_dispute(
        ctx.conn,
        ctx.effects.moves,
        workspace_id,
        payment_id,
        int(prepared.get("amount") or dispute.get("amount") or 0),
        held,
        ctx.cause,
    )
    await after_clawback(ctx.conn, ctx.billing, ctx.effects, workspace_id)
    return workspace_id


HANDLERS: dict[str, tuple[Prepare, Apply]] = {
    "checkout.session.completed": (prepare_checkout, apply_checkout),
    "checkout.session.async_payment_succeeded": (prepare_checkout, apply_checkout),
    "invoice.paid": (prepare_invoice_paid, apply_invoice_paid),
    "invoice.payment_failed": (_nothing, apply_invoice_failed),
    "customer.subscription.created": (prepare_subscription, apply_subscription_event),
    "customer.subscription.updated": (prepare_subscription, apply_subscription_event),
    "customer.subscription.deleted": (prepare_subscription, apply_subscription_event),
    "payment_intent.succeeded": (prepare_intent, apply_intent_succeeded),
    "payment_intent.payment_failed": (_nothing, apply_intent_failed),
    "charge.refunded": (_nothing, apply_refund),
    "charge.dispute.created": (prepare_dispute, apply_dispute),
    "charge.dispute.closed": (prepare_dispute, apply_dispute),
}
EVENT_TYPES = tuple(HANDLERS)
