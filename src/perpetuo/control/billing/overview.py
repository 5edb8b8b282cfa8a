"""What a workspace's billing looks like to its people: plan, renewal, trial, balance,
automatic-recharge settings; and its invoices and payments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.billing import accounts, money
from perpetuo.control.billing.service import Billing
from perpetuo.store.billing_tables import billing_payments
from perpetuo.store.timeutil import iso


def account_view(billing: Billing, acc: Any, balance: int) -> dict[str, Any]:
    plan = billing.catalog.plan(acc.plan_id)
    return {
        "object": "billing_account",
        "workspace_id": acc.workspace_id,
        "plan": billing.catalog.view(plan) if plan else None,
        "interval": acc.interval,
        "subscription_status": acc.subscription_status,
        "renews_at": None if acc.cancel_at_period_end else iso(acc.current_period_end),
        "current_period_end": iso(acc.current_period_end),
        "cancel_at_period_end": bool(acc.cancel_at_period_end),
        "past_due_since": iso(acc.past_due_since),
        "has_customer": acc.customer_id is not None,
        "balance_usd": balance / 1_000_000,
        "paused": bool(acc.paused),
        "trial": {
            "status": acc.trial_status or "none",
            "plan_id": acc.trial_plan_id,
            "ends_at": iso(acc.trial_ends_at),
        },
        "auto_recharge": {
            "enabled": bool(acc.auto_recharge),
            "threshold_usd": acc.recharge_threshold_micros / 1_000_000,
            "amount_usd": acc.recharge_amount_micros / 1_000_000,
            "last_failed_at": iso(acc.recharge_failed_at),
        },
        "topup": billing.config.topup.model_dump(),
    }


async def overview(billing: Billing, actor: Actor, workspace_id: str) -> dict[str, Any]:
    async with billing.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.VIEWER)
        acc = await accounts.account(conn, workspace_id)
        balance = await money.balance(conn, workspace_id)
    return account_view(billing, acc, balance - billing.pending_usage(workspace_id))


def _invoice(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": item.get("id"),
        "object": "invoice",
        "number": item.get("number"),
        "status": item.get("status"),
        "total_usd": int(item.get("total") or 0) / 100,
        "amount_paid_usd": int(item.get("amount_paid") or 0) / 100,
        "created": item.get("created"),
        "hosted_invoice_url": item.get("hosted_invoice_url"),
        "invoice_pdf": item.get("invoice_pdf"),
    }


async def invoices(billing: Billing, actor: Actor, workspace_id: str) -> dict[str, Any]:
    """Stripe's invoices (with links to its hosted pages) and the payments credited here."""
    async with billing.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        acc = await accounts.account(conn, workspace_id)
        rows = (
            await conn.execute(
                select(billing_payments)
                .where(billing_payments.c.workspace_id == workspace_id)
                .order_by(billing_payments.c.created_at.desc())
                .limit(100)
            )
        ).all()
    found = await billing.stripe.invoices(acc.customer_id, 50) if acc.customer_id else []
    return {
        "object": "list",
        "data": [_invoice(item) for item in found],
        "payments": [
            {
                "id": row.id,
                "object": "payment",
                "kind": row.kind,
                "description": row.description,
                "amount_usd": row.amount_cents / 100,
                "credits_usd": (row.credits_micros or 0) / 1_000_000,
                "refunded_usd": row.refunded_cents / 100,
                "disputed_usd": row.disputed_cents / 100,
                "invoice_id": row.invoice_id,
                "created_at": iso(row.created_at),
            }
            for row in rows
        ],
    }
