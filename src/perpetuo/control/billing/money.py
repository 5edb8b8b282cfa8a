"""Every movement of money onto or off a workspace's balance, as credit-ledger rows.

Rules that keep the balance right whatever order, and however often, Stripe's events come:
- each row carries a unique `reference` (a PaymentIntent, an event, a trial, a coupon...),
  inserted with ON CONFLICT DO NOTHING: the same cause can never move the balance twice;
- a payment is credited once, by its PaymentIntent id, whichever event names it first;
- refunds and disputes set a payment's refunded and disputed amounts (never add to them),
  and the credit taken back is recomputed from those, moved by a conditional update of
  `clawed_micros`: concurrent events for one payment each move only the difference;
- a refund seen before its payment waits on the payment row (credits unknown) and is taken
  back when the payment is credited.
Callers run these inside the transaction that records the event, then hand `moves` to the
limits engine once it commits, so live balances follow the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from perpetuo.store.aio import AsyncConnection
from perpetuo.store.billing_tables import billing_payments
from perpetuo.store.schema import credit_ledger
from perpetuo.store.timeutil import utcnow


@dataclass
class Moves:
    """Balance changes written in a transaction: (workspace, micro-USD), for after commit."""

    items: list[tuple[str, int]] = field(default_factory=list)

    def add(self, workspace_id: str, micros: int) -> None:
        if micros:
            self.items.append((workspace_id, micros))


async def add_entry(
    conn: AsyncConnection,
    moves: Moves,
    workspace_id: str,
    kind: str,
    micros: int,
    reference: str,
    note: str | None = None,
    actor_id: str | None = None,
) -> bool:
    """One ledger row for `reference`; False (and nothing written) if it exists already."""
    if micros == 0:
        return False
    statement = (
        conn.insert(credit_ledger)
        .values(
            workspace_id=workspace_id,
            kind=kind,
            amount_micros=micros,
            note=(note or "")[:300] or None,
            actor_id=actor_id,
            reference=reference[:120],
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["reference"])
    )
    result = await conn.execute(statement)
    if result.rowcount != 1:
        return False
    moves.add(workspace_id, micros)
    return True


async def balance(conn: AsyncConnection, workspace_id: str) -> int:
    total = await conn.scalar(
        select(func.coalesce(func.sum(credit_ledger.c.amount_micros), 0)).where(
            credit_ledger.c.workspace_id == workspace_id
        )
    )
    return int(total or 0)


@dataclass(frozen=True)
class Payment:
    id: str  # the PaymentIntent
    workspace_id: str
    kind: str  # topup | recharge | subscription
    amount_cents: int
    credits_micros: int
    invoice_id: str | None = None
    fingerprint: str | None = None
    description: str | None = None


async def credit_payment(conn: AsyncConnection, moves: Moves, payment: Payment, cause: str) -> bool:
    """Credit a successful payment once; True the first time. `cause` (the event id) names
    any take-back of a refund that was waiting for it."""
    values = {
        "kind": payment.kind,
        "amount_cents": payment.amount_cents,
        "credits_micros": payment.credits_micros,
        "invoice_id": payment.invoice_id,
        "fingerprint": payment.fingerprint,
        "description": payment.description,
    }
    inserted = await conn.execute(
        conn.insert(billing_payments)
        .values(
            id=payment.id,
            workspace_id=payment.workspace_id,
            currency="usd",
            refunded_cents=0,
            disputed_cents=0,
            clawed_micros=0,
            created_at=utcnow(),
            **values,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    if inserted.rowcount != 1:
        # Known already: credited (nothing to do), or only through a refund (fill it in).
        filled = await conn.execute(
            update(billing_payments)
            .where(
                billing_payments.c.id == payment.id,
                billing_payments.c.credits_micros.is_(None),
            )
            .values(**values)
        )
        if filled.rowcount != 1:
            return False
    kind = "plan" if payment.kind == "subscription" else "purchase"
    await add_entry(
        conn,
        moves,
        payment.workspace_id,
        kind,
        payment.credits_micros,
        payment.id,
        payment.description,
    )
    await reconcile(conn, moves, payment.id, f"{cause}:claw")
    return True


async def _ensure_row(
    conn: AsyncConnection, workspace_id: str, payment_id: str, amount_cents: int
) -> None:
    """A payment seen first through a refund or dispute: known, not yet credited."""
    await conn.execute(
        conn.insert(billing_payments)
        .values(
            id=payment_id,
            workspace_id=workspace_id,
            kind="unknown",
            amount_cents=amount_cents,
            currency="usd",
            credits_micros=None,
            refunded_cents=0,
            disputed_cents=0,
            clawed_micros=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def record_refund(
    conn: AsyncConnection,
    moves: Moves,
    workspace_id: str,
    payment_id: str,
    amount_cents: int,
    refunded_cents: int,
    cause: str,
) -> None:
    """The payment's refunded total is now `refunded_cents` (Stripe's `amount_refunded`,
    cumulative): take back the matching share of its credits."""
    await _ensure_row(conn, workspace_id, payment_id, amount_cents)
    await conn.execute(
        update(billing_payments)
        .where(
            billing_payments.c.id == payment_id,
            billing_payments.c.refunded_cents < refunded_cents,
        )
        .values(refunded_cents=refunded_cents)
    )
    await reconcile(conn, moves, payment_id, cause)


async def record_dispute(
    conn: AsyncConnection,
    moves: Moves,
    workspace_id: str,
    payment_id: str,
    amount_cents: int,
    disputed_cents: int,
    cause: str,
) -> None:
    """A dispute holds `disputed_cents` of the payment (0 once it is won)."""
    await _ensure_row(conn, workspace_id, payment_id, amount_cents)
    await conn.execute(
        update(billing_payments)
        .where(billing_payments.c.id == payment_id)
        .values(disputed_cents=disputed_cents)
    )
    await reconcile(conn, moves, payment_id, cause)


def clawback_target(row: Any) -> int:
    """Credits the payment's refunds and open disputes take back (never more than it gave)."""
    if row.credits_micros is None or row.amount_cents <= 0:
        return 0
    taken = min(row.amount_cents, row.refunded_cents + row.disputed_cents)
    return min(row.credits_micros, row.credits_micros * taken // row.amount_cents)


async def reconcile(conn: AsyncConnection, moves: Moves, payment_id: str, cause: str) -> None:
    """Bring the ledger to the payment's current refunds and disputes."""
    c = billing_payments.c
    for _ in range(20):  # a concurrent event for the same payment moved it: look again
        row = (await conn.execute(select(billing_payments).where(c.id == payment_id))).first()
        if row is None:
            return
        target = clawback_target(row)
        delta = target - row.clawed_micros
        if delta == 0:
            return
        moved = await conn.execute(
            update(billing_payments)
            .where(c.id == payment_id, c.clawed_micros == row.clawed_micros)
            .values(clawed_micros=target)
        )
        if moved.rowcount == 1:
            kind = "dispute" if row.disputed_cents else "refund"
            note = f"{kind} of {payment_id}" if delta > 0 else f"dispute won on {payment_id}"
            written = await add_entry(
                conn, moves, row.workspace_id, kind, -delta, f"{cause}:{payment_id}", note
            )
            if not written:
                raise RuntimeError(f"ledger reference reused for {payment_id}")
            return
    raise RuntimeError(f"could not settle the refunds of {payment_id}")
