"""Property: whatever order Stripe's events arrive in, however often each is delivered, the
ledger ends where the payments say it must. A workspace subscribes, tops up, is refunded in
two steps, disputes its first invoice and renews; hypothesis replays that event stream
shuffled and with duplicates. After every stream: each payment credited once, take-backs
matching the final refunds and disputes, the balance the sum of its ledger, and the
subscription's state Stripe's own."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from perpetuo.store.billing_tables import billing_accounts, billing_payments
from perpetuo.store.schema import credit_ledger


async def _scenario(shop):
    ws, _, token = await shop.customer()
    made = await shop.call(
        token, "POST", f"/api/workspaces/{ws}/billing/checkout", {"plan_id": "pro"}
    )
    shop.fake.complete_checkout(made.json()["data"]["id"])
    top = await shop.call(token, "POST", f"/api/workspaces/{ws}/billing/topup", {"amount_usd": 30})
    top_id = top.json()["data"]["id"]
    shop.fake.complete_checkout(top_id)
    intent = shop.fake.get(top_id)["payment_intent"]
    shop.fake.refund(intent, 1000)
    shop.fake.refund(intent, 500)
    sub_id = shop.fake.get(made.json()["data"]["id"])["subscription"]
    first_invoice_intent = next(
        o
        for o in shop.fake.objects.values()
        if o["object"] == "invoice_payment" and o["invoice"] in _invoices(shop, sub_id)
    )["payment"]["payment_intent"]
    shop.fake.dispute(first_invoice_intent)
    shop.fake.renew(sub_id)
    return ws, sub_id, shop.fake.take()


def _invoices(shop, sub_id):
    return {
        o["id"]
        for o in shop.fake.objects.values()
        if o["object"] == "invoice"
        and (o.get("parent") or {}).get("subscription_details", {}).get("subscription") == sub_id
    }


def _expected(shop, sub_id, ws):
    """What the ledger must hold, from the fake's final state (Stripe's truth)."""
    total = 0
    for o in shop.fake.objects.values():
        if o["object"] != "charge":
            continue
        intent = shop.fake.get(o["payment_intent"])
        if (
            intent.get("customer") is None
            or shop.fake.get(intent["customer"])["metadata"].get("workspace_id") != ws
        ):
            continue
        meta = intent["metadata"]
        credits = int(meta["credits_micros"]) if meta.get("kind") == "topup" else 20_000_000
        disputed = o["amount"] if o["disputed"] else 0
        taken = min(o["amount"], o["amount_refunded"] + disputed)
        total += credits - credits * taken // o["amount"]
    return total


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(order=st.data())
async def test_any_order_any_duplicates_same_ledger(shop, order):
    ws, sub_id, events = await _scenario(shop)
    stream = order.draw(st.permutations(events))
    extra = order.draw(st.lists(st.sampled_from(events), max_size=len(events)))
    for event in extra:
        stream.insert(order.draw(st.integers(0, len(stream))), event)
    for event in stream:
        payload, signature = shop.fake.signed(event)
        answer = await shop.api.http.post(
            "/api/billing/stripe/webhook", content=payload, headers={"stripe-signature": signature}
        )
        assert answer.status_code == 200, answer.text
    expected = _expected(shop, sub_id, ws)
    assert await shop.balance(ws) == expected
    async with shop.api.plane.db.connect() as conn:
        refs = (
            await conn.execute(
                select(credit_ledger.c.reference, func.count())
                .where(credit_ledger.c.workspace_id == ws)
                .group_by(credit_ledger.c.reference)
            )
        ).all()
        payments = (
            await conn.execute(
                select(billing_payments).where(billing_payments.c.workspace_id == ws)
            )
        ).all()
        account = (
            await conn.execute(
                select(billing_accounts).where(billing_accounts.c.workspace_id == ws)
            )
        ).one()
    assert all(count == 1 for _, count in refs)
    assert len(payments) == 3  # two invoices and the top-up, each once
    for p in payments:
        assert p.credits_micros is not None and 0 <= p.clawed_micros <= p.credits_micros
    live = shop.fake.get(sub_id)
    assert account.subscription_status == live["status"] == "active"
    assert account.plan_id == "pro"
