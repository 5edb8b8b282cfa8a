"""Paying through Checkout and the webhooks that follow: credits and plans appear only once
Stripe's signed event says so, forged and stale events change nothing, replays credit once."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from perpetuo.store.schema import credit_ledger, workspaces
from tests.support.admin_api import error_of
from tests.support.fake_stripe import sign


async def test_top_up_credits_once_with_its_stripe_reference(shop):
    ws, _, token = await shop.customer()
    intent = await shop.top_up(token, ws, 25)
    assert await shop.balance(ws) == 25_000_000
    async with shop.api.plane.db.connect() as conn:
        rows = (
            await conn.execute(select(credit_ledger).where(credit_ledger.c.workspace_id == ws))
        ).all()
    assert [(r.kind, r.amount_micros, r.reference) for r in rows] == [
        ("purchase", 25_000_000, intent)
    ]
    # Stripe sent checkout.session.completed and payment_intent.succeeded for the one payment.
    kinds = [e["type"] for e in shop.fake.sent[-2:]]
    assert kinds == ["checkout.session.completed", "payment_intent.succeeded"]


async def test_replayed_events_do_not_credit_again(shop):
    ws, _, token = await shop.customer()
    await shop.top_up(token, ws, 10)
    for event in shop.fake.sent[-2:]:
        payload, signature = shop.fake.signed(event)
        answer = await shop.api.http.post(
            "/api/billing/stripe/webhook", content=payload, headers={"stripe-signature": signature}
        )
        assert answer.status_code == 200 and answer.json()["duplicate"] is True
    assert await shop.balance(ws) == 10_000_000


async def test_forged_and_stale_events_are_refused_and_change_nothing(shop):
    ws, _, token = await shop.customer()
    made = await shop.call(token, "POST", f"/api/workspaces/{ws}/billing/topup", {"amount_usd": 50})
    shop.fake.complete_checkout(made.json()["data"]["id"])
    events = shop.fake.take()
    payload, _ = shop.fake.signed(events[0])
    forged = sign(payload, "whsec_someone_else")
    stale = sign(payload, at=int(time.time()) - 3600)
    tampered_body = json.dumps({**events[0], "id": "evt_other"}).encode()
    _, good = shop.fake.signed(events[0])
    for body, signature in (
        (payload, forged),
        (payload, stale),
        (tampered_body, good),
        (payload, ""),
    ):
        answer = await shop.api.http.post(
            "/api/billing/stripe/webhook", content=body, headers={"stripe-signature": signature}
        )
        assert answer.status_code == 400, answer.text
        assert error_of(answer)["code"] == "invalid_signature"
    assert await shop.balance(ws) == 0
    answer = await shop.api.http.post(
        "/api/billing/stripe/webhook", content=payload, headers={"stripe-signature": good}
    )
    assert answer.status_code == 200 and await shop.balance(ws) == 50_000_000


async def test_subscription_sets_plan_limits_credits_and_renewal(shop):
    ws, _, token = await shop.customer()
    await shop.subscribe(token, ws, "pro")
    view = (await shop.call(token, "GET", f"/api/workspaces/{ws}/billing")).json()["data"]
    assert view["plan"]["id"] == "pro" and view["subscription_status"] == "active"
    assert view["renews_at"] is not None and view["balance_usd"] == 20.0
    async with shop.api.plane.db.connect() as conn:
        settings = await conn.scalar(select(workspaces.c.settings).where(workspaces.c.id == ws))
    assert settings["plan"] == "pro" and settings["limits"] == {"rpm": 300, "max_parallel": 8}
    assert settings["credits_required"] is True
    # A renewal grants the month's credits again; the invoice is listed with its hosted page.
    shop.fake.renew(await _subscription_of(shop, ws))
    await shop.deliver()
    assert await shop.balance(ws) == 40_000_000
    listed = (await shop.call(token, "GET", f"/api/workspaces/{ws}/billing/invoices")).json()
    assert len(listed["data"]) == 2 and all(i["hosted_invoice_url"] for i in listed["data"])
    assert {p["kind"] for p in listed["payments"]} == {"subscription"}


async def test_upgrade_is_prorated_and_cancel_ends_at_period_end(shop):
    ws, _, token = await shop.customer()
    await shop.subscribe(token, ws, "starter")
    assert await shop.balance(ws) == 5_000_000
    changed = await shop.call(
        token, "POST", f"/api/workspaces/{ws}/billing/plan", {"plan_id": "pro"}
    )
    assert changed.status_code == 200, changed.text
    await shop.deliver()
    view = (await shop.call(token, "GET", f"/api/workspaces/{ws}/billing")).json()["data"]
    assert view["plan"]["id"] == "pro"
    # Almost the whole period was left: about (40 - 10) dollars paid, 15 of the 20 credits.
    assert 14_900_000 <= await shop.balance(ws) - 5_000_000 <= 15_000_000
    canceled = await shop.call(token, "POST", f"/api/workspaces/{ws}/billing/cancel")
    assert canceled.status_code == 200 and canceled.json()["data"]["cancel_at_period_end"]
    await shop.deliver()
    view = (await shop.call(token, "GET", f"/api/workspaces/{ws}/billing")).json()["data"]
    assert view["cancel_at_period_end"] and view["renews_at"] is None
    assert view["plan"]["id"] == "pro"  # until the period ends
    shop.fake.renew(await _subscription_of(shop, ws))
    await shop.deliver()
    view = (await shop.call(token, "GET", f"/api/workspaces/{ws}/billing")).json()["data"]
    assert view["subscription_status"] == "canceled" and view["plan"]["id"] == "free"


async def _subscription_of(shop, ws):
    from perpetuo.store.billing_tables import billing_accounts

    async with shop.api.plane.db.connect() as conn:
        return await conn.scalar(
            select(billing_accounts.c.subscription_id).where(billing_accounts.c.workspace_id == ws)
        )


async def test_refund_and_dispute_take_credits_back_even_below_zero(shop):
    ws, _, token = await shop.customer()
    intent = await shop.top_up(token, ws, 20)
    shop.fake.refund(intent, 500)  # five dollars back
    await shop.deliver()
    assert await shop.balance(ws) == 15_000_000
    shop.fake.refund(intent)  # the rest
    await shop.deliver()
    assert await shop.balance(ws) == 0
    other = await shop.top_up(token, ws, 10)
    async with shop.api.plane.db.begin() as conn:  # spend it all, and a bit more
        await conn.execute(
            credit_ledger.insert().values(
                workspace_id=ws, kind="usage", amount_micros=-9_000_000, created_at=_now()
            )
        )
    shop.fake.dispute(other)
    await shop.deliver()
    assert await shop.balance(ws) == -9_000_000


def _now():
    from perpetuo.store.timeutil import utcnow

    return utcnow()


async def test_routes_are_off_when_billing_is_off(tmp_path):
    from tests.support.admin_api import MASTER, admin_api

    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as api:
        assert api.plane.billing is None
        for method, path in (
            ("GET", "/api/plans"),
            ("POST", "/api/billing/stripe/webhook"),
            ("POST", "/api/trials/start"),
            ("GET", "/api/trials/status"),
        ):
            answer = await api.http.request(method, path, headers=MASTER)
            assert answer.status_code == 404, (path, answer.text)
        paths = api.app.admin_app().openapi()["paths"]
        assert not [p for p in paths if "billing" in p or "plans" in p or "trials" in p]


async def test_stripe_gets_absolute_return_addresses_without_mail_configured(shop):
    # Stripe refuses relative success, cancel and return URLs; this server sends no mail.
    assert not shop.api.plane.mail.enabled
    ws, _, token = await shop.customer()
    made = await shop.call(token, "POST", f"/api/workspaces/{ws}/billing/topup", {"amount_usd": 10})
    session = shop.fake.get(made.json()["data"]["id"])
    assert session["success_url"] == f"http://127.0.0.1:8080/ui/w/{ws}/billing?checkout=done"
    assert session["cancel_url"] == f"http://127.0.0.1:8080/ui/w/{ws}/billing?checkout=canceled"
    portal = await shop.call(token, "POST", f"/api/workspaces/{ws}/billing/portal")
    assert portal.status_code == 201, portal.text
    [call] = [c for c in shop.fake.calls if c[1] == "billing_portal/sessions"][-1:]
    assert call[2]["return_url"] == f"http://127.0.0.1:8080/ui/w/{ws}/billing"
