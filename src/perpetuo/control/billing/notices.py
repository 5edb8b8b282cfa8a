"""Billing mail (receipts, failed payments, low balance, trial reminders) and what a
take-back does to a workspace whose balance goes below zero.

Mail is queued in the transaction of the event that causes it (control/mail), with a dedupe
key naming that event, so a replayed event never mails twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from perpetuo.control.billing import accounts, money
from perpetuo.store.aio import AsyncConnection
from perpetuo.store.schema import workspaces

if TYPE_CHECKING:
    from perpetuo.control.billing.service import Billing, Effects


async def _name(conn: AsyncConnection, workspace_id: str) -> str:
    name = await conn.scalar(select(workspaces.c.name).where(workspaces.c.id == workspace_id))
    return name or workspace_id


def billing_url(billing: Billing, workspace_id: str) -> str:
    return billing.link(f"/ui/w/{workspace_id}/billing")


async def receipt(conn: AsyncConnection, billing: Billing, payment: Any) -> None:
    balance = await money.balance(conn, payment.workspace_id)
    await billing.plane.mail.send_to_workspace_admins(
        conn,
        payment.workspace_id,
        "receipt",
        {
            "workspace_name": await _name(conn, payment.workspace_id),
            "amount_usd": payment.amount_cents / 100,
            "credits_usd": payment.credits_micros / 1_000_000,
            "balance_usd": balance / 1_000_000,
            "description": payment.description or payment.kind,
            "reference": payment.id,
            "billing_url": billing_url(billing, payment.workspace_id),
        },
        dedupe_key=f"receipt:{payment.id}",
    )


async def payment_failed(
    conn: AsyncConnection,
    billing: Billing,
    workspace_id: str,
    amount_cents: int,
    reason: str,
    dedupe: str,
) -> None:
    await billing.plane.mail.send_to_workspace_admins(
        conn,
        workspace_id,
        "payment_failed",
        {
            "workspace_name": await _name(conn, workspace_id),
            "amount_usd": amount_cents / 100 if amount_cents else None,
            "reason": reason,
            "billing_url": billing_url(billing, workspace_id),
        },
        dedupe_key=f"payment_failed:{dedupe}",
    )


async def low_balance(
    conn: AsyncConnection, billing: Billing, workspace_id: str, micros: int, crossing: int
) -> None:
    await billing.plane.mail.send_to_workspace_admins(
        conn,
        workspace_id,
        "low_balance",
        {
            "workspace_name": await _name(conn, workspace_id),
            "balance_usd": micros / 1_000_000,
            "threshold_usd": billing.config.low_balance_usd,
            "billing_url": billing_url(billing, workspace_id),
        },
        dedupe_key=f"low_balance:{workspace_id}:{crossing}",
    )


async def trial_ending(
    conn: AsyncConnection, billing: Billing, workspace_id: str, ends_on: str, ends_at: str
) -> None:
    await billing.plane.mail.send_to_workspace_admins(
        conn,
        workspace_id,
        "trial_ending",
        {
            "workspace_name": await _name(conn, workspace_id),
            "ends_on": ends_on,
            "billing_url": billing_url(billing, workspace_id),
        },
        dedupe_key=f"trial_ending:{workspace_id}:{ends_at}",
    )


async def after_clawback(
    conn: AsyncConnection, billing: Billing, effects: Effects, workspace_id: str
) -> None:
    """A refund or dispute may leave the balance below zero: with `pause_keys_below_zero`
    the workspace's requests are refused (credits required) until it is paid back."""
    if not billing.config.pause_keys_below_zero:
        return
    if await money.balance(conn, workspace_id) >= 0:
        return
    acc = await accounts.account(conn, workspace_id)
    if not acc.paused:
        await accounts.save(conn, workspace_id, paused=True)
    if await accounts.require_credits(conn, workspace_id):
        effects.workspaces.add(workspace_id)
