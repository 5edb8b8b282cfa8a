"""On PostgreSQL, with deliveries and requests racing: a payment is credited once however
many copies of its events arrive at the same moment, and a coupon limited to ten is redeemed
exactly ten times by fifty workspaces at once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from perpetuo.store.billing_tables import coupons, stripe_events
from perpetuo.store.schema import credit_ledger
from tests.support.admin_api import MASTER


async def _post_all(shop, events, copies):
    async def post(event):
        payload, signature = shop.fake.signed(event)
        return await shop.api.http.post(
            "/api/billing/stripe/webhook", content=payload, headers={"stripe-signature": signature}
        )

    answers = await asyncio.gather(*(post(e) for e in events for _ in range(copies)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return answers


async def test_concurrent_duplicate_deliveries_credit_once(pg_shop):
    shop = pg_shop
    ws, _, token = await shop.customer()
    made = await shop.call(
        token, "POST", f"/api/workspaces/{ws}/billing/checkout", {"plan_id": "pro"}
    )
    shop.fake.complete_checkout(made.json()["data"]["id"])
    events = shop.fake.take()
    paid = [e for e in events if e["type"] in ("checkout.session.completed", "invoice.paid")]
    assert len(paid) == 2
    answers = await _post_all(shop, events, copies=8)
    fresh = [a for a in answers if a.json()["duplicate"] is False]
    assert len(fresh) == len(events)  # each event applied by exactly one delivery
    assert await shop.balance(ws) == 20_000_000
    top = await shop.call(token, "POST", f"/api/workspaces/{ws}/billing/topup", {"amount_usd": 7})
    shop.fake.complete_checkout(top.json()["data"]["id"])
    await _post_all(shop, shop.fake.take(), copies=8)
    assert await shop.balance(ws) == 27_000_000
    async with shop.api.plane.db.connect() as conn:
        rows = await conn.scalar(select(func.count()).where(credit_ledger.c.workspace_id == ws))
        seen = await conn.scalar(select(func.count()).select_from(stripe_events))
    assert rows == 2 and seen >= len(events)


async def test_fifty_concurrent_redemptions_of_a_coupon_limited_to_ten(pg_shop):
    shop = pg_shop
    made = await shop.api.http.post(
        "/api/admin/coupons",
        headers=MASTER,
        json={"code": "TEN-ONLY", "kind": "credits", "credits_usd": 3, "max_redemptions": 10},
    )
    assert made.status_code == 201, made.text
    customers = [await shop.customer() for _ in range(50)]
    answers = await asyncio.gather(
        *(
            shop.call(token, "POST", f"/api/workspaces/{ws}/billing/coupons", {"code": "ten-only"})
            for ws, _, token in customers
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 10 + [409] * 40, codes
    async with shop.api.plane.db.connect() as conn:
        count = await conn.scalar(select(coupons.c.redemptions).where(coupons.c.code == "TEN-ONLY"))
        credited = await conn.scalar(select(func.count()).where(credit_ledger.c.kind == "coupon"))
    assert count == 10 and credited == 10
    winners = [ws for (ws, _, _), a in zip(customers, answers, strict=True) if a.status_code == 201]
    assert [await shop.balance(ws) for ws in winners] == [3_000_000] * 10
    again = await shop.call(
        customers[0][2],
        "POST",
        f"/api/workspaces/{customers[0][0]}/billing/coupons",
        {"code": "TEN-ONLY"},
    )
    assert again.status_code == 409


async def test_concurrent_trial_starts_give_one_trial(pg_shop):
    shop = pg_shop
    ws, _, token = await shop.customer()
    answers = await asyncio.gather(
        *(shop.call(token, "POST", "/api/trials/start", {"workspace_id": ws}) for _ in range(10))
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 9, [a.text for a in answers]
    assert await shop.balance(ws) == 5_000_000
