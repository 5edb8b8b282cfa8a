"""Automatic recharge and the low-balance notice: once per crossing of a threshold, never in a
loop.

Each is an armed flag on the billing account. Falling below the threshold disarms it with a
conditional update (`armed = true` in the WHERE clause), and only the instance whose update
changed the row acts: it charges the saved card off-session (the PaymentIntent's idempotency
key names the crossing, so a retry cannot charge twice) or queues the mail. The flag is set
again only when the balance is back at or above the threshold, so a recharge that did not
lift the balance there, or a declined card, waits for the next payment or a new setting
instead of charging again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update

from perpetuo.control.access import require_role
from perpetuo.control.actor import Actor, Role
from perpetuo.control.billing import accounts, money
from perpetuo.control.billing.checkout import record
from perpetuo.control.billing.events import Context, credit_paid
from perpetuo.control.billing.notices import low_balance, payment_failed
from perpetuo.control.billing.service import Billing, Effects
from perpetuo.control.billing.stripe_api import PaymentDeclined
from perpetuo.control.errors import invalid
from perpetuo.schema.errors import GatewayError
from perpetuo.store.billing_tables import billing_accounts
from perpetuo.store.schema import credit_ledger
from perpetuo.store.timeutil import utcnow


class AutoRecharge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool
    threshold_usd: float = Field(default=5.0, ge=0, le=100_000)
    amount_usd: float = Field(default=25.0, gt=0, le=100_000)


async def configure(
    billing: Billing, actor: Actor, workspace_id: str, spec: AutoRecharge
) -> dict[str, Any]:
    cfg = billing.config.auto_recharge
    if spec.enabled:
        if not cfg.enabled:
            raise invalid("Automatic recharge is not offered on this server.", "enabled")
        if spec.threshold_usd < cfg.min_threshold_usd:
            raise invalid(f"The threshold is at least ${cfg.min_threshold_usd:g}.", "threshold_usd")
        if not cfg.min_amount_usd <= spec.amount_usd <= cfg.max_amount_usd:
            raise invalid(
                f"A recharge is between ${cfg.min_amount_usd:g} and ${cfg.max_amount_usd:g}.",
                "amount_usd",
            )
    values = {
        "auto_recharge": spec.enabled,
        "recharge_threshold_micros": round(spec.threshold_usd * 1_000_000),
        "recharge_amount_micros": round(spec.amount_usd * 1_000_000),
        "recharge_armed": True,  # a new setting is a fresh start (also after a decline)
        "recharge_failed_at": None,
    }
    async with billing.db.begin() as conn:
        await require_role(conn, actor, workspace_id, Role.ADMIN)
        await accounts.account(conn, workspace_id)
        await accounts.save(conn, workspace_id, **values)
        await record(
            conn, actor, "billing.auto_recharge", workspace_id, workspace_id, spec.model_dump()
        )
    return {"object": "auto_recharge", **spec.model_dump()}


async def balances(billing: Billing) -> list[tuple[Any, int]]:
    """Every billing account with its balance (the ledger less usage not yet written)."""
    async with billing.db.connect() as conn:
        totals = (
            select(
                credit_ledger.c.workspace_id,
                func.sum(credit_ledger.c.amount_micros).label("total"),
            )
            .group_by(credit_ledger.c.workspace_id)
            .subquery()
        )
        rows = (
            await conn.execute(
                select(billing_accounts, func.coalesce(totals.c.total, 0).label("balance"))
                .select_from(billing_accounts)
                .outerjoin(totals, totals.c.workspace_id == billing_accounts.c.workspace_id)
            )
        ).all()
    return [(row, int(row.balance) - billing.pending_usage(row.workspace_id)) for row in rows]


async def _disarm(billing: Billing, workspace_id: str, flag: str) -> int | None:
    """Clear the armed flag if this instance is first; the crossing number, or None."""
    column = billing_accounts.c[flag]
    async with billing.db.begin() as conn:
        result = await conn.execute(
            update(billing_accounts)
            .where(billing_accounts.c.workspace_id == workspace_id, column.is_(True))
            .values({flag: False, "crossings": billing_accounts.c.crossings + 1})
        )
        if result.rowcount != 1:
            return None
        return await conn.scalar(
            select(billing_accounts.c.crossings).where(
                billing_accounts.c.workspace_id == workspace_id
            )
        )


async def _rearm(billing: Billing, workspace_id: str, flag: str) -> None:
    column = billing_accounts.c[flag]
    async with billing.db.begin() as conn:
        await conn.execute(
            update(billing_accounts)
            .where(billing_accounts.c.workspace_id == workspace_id, column.is_(False))
            .values({flag: True})
        )


async def check(billing: Billing) -> dict[str, int]:
    """One pass over every account; how many recharges were started and mails queued."""
    done = {"recharges": 0, "low_balance_mails": 0}
    low_micros = round(billing.config.low_balance_usd * 1_000_000)
    for acc, balance in await balances(billing):
        workspace_id = acc.workspace_id
        if billing.config.auto_recharge.enabled and acc.auto_recharge:
            threshold = acc.recharge_threshold_micros
            if balance < threshold and acc.recharge_armed:
                crossing = await _disarm(billing, workspace_id, "recharge_armed")
                if crossing is not None and await _charge(billing, acc, crossing):
                    done["recharges"] += 1
            elif balance >= threshold and not acc.recharge_armed:
                await _rearm(billing, workspace_id, "recharge_armed")
        if low_micros and acc.customer_id:  # only workspaces that pay get the notice
            if balance < low_micros and acc.low_balance_armed:
                crossing = await _disarm(billing, workspace_id, "low_balance_armed")
                if crossing is not None:
                    async with billing.db.begin() as conn:
                        await low_balance(conn, billing, workspace_id, balance, crossing)
                    done["low_balance_mails"] += 1
            elif balance >= low_micros and not acc.low_balance_armed:
                await _rearm(billing, workspace_id, "low_balance_armed")
    return done


def recharge_attempt(workspace_id: str, crossing: int) -> str:
    """One recharge: the charge's idempotency key, and the dedupe key of the mail saying it
    failed (sent here, or by Stripe's `payment_intent.payment_failed`, whichever is first)."""
    return f"recharge:{workspace_id}:{crossing}"


async def _charge(billing: Billing, acc: Any, crossing: int) -> bool:
    if not acc.customer_id or acc.recharge_amount_micros <= 0:
        return False
    amount_cents = acc.recharge_amount_micros // 10_000
    attempt = recharge_attempt(acc.workspace_id, crossing)
    metadata = {
        "workspace_id": acc.workspace_id,
        "kind": "recharge",
        "credits_micros": str(amount_cents * 10_000),
        "description": "Automatic credit recharge",
        "attempt": attempt,  # Stripe's failure event then names the same attempt
    }
    try:
        intent = await billing.stripe.charge_off_session(
            acc.customer_id, amount_cents, metadata, attempt
        )
    except (PaymentDeclined, GatewayError) as exc:
        # Not retried with a new key: the charge may have reached Stripe. People are told.
        reason = str(exc) if isinstance(exc, PaymentDeclined) else "the provider was unreachable"
        async with billing.db.begin() as conn:
            await accounts.save(conn, acc.workspace_id, recharge_failed_at=utcnow())
            await payment_failed(
                conn,
                billing,
                acc.workspace_id,
                amount_cents,
                reason[:200],
                attempt,
            )
        return False
    if intent.get("status") == "succeeded":  # credited now; the webhook then finds it done
        effects = Effects()
        payment = money.Payment(
            id=intent["id"],
            workspace_id=acc.workspace_id,
            kind="recharge",
            amount_cents=amount_cents,
            credits_micros=amount_cents * 10_000,
            description="Automatic recharge",
        )
        async with billing.db.begin() as conn:
            context = Context(conn, billing, effects, {"id": f"recharge:{intent['id']}"})
            await credit_paid(context, payment)
        await billing.commit(effects)
    return True
