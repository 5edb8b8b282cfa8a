"""The billing mails, each from what causes it, through the outbox to a real SMTP server:
the trial reminder, a failed renewal (and the grace period that follows), a declined
automatic recharge, and the low-balance notice; each once per cause however often the
background pass runs or Stripe repeats itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import select

from perpetuo.config import GatewayConfig
from perpetuo.control.billing import money
from perpetuo.control.billing.worker import run_once
from perpetuo.store.billing_tables import billing_accounts
from perpetuo.store.schema import workspaces
from perpetuo.store.timeutil import utcnow
from tests.control.billing.conftest import Shop, billing_config, billing_settings
from tests.support.admin_api import admin_api
from tests.support.fake_stripe import DECLINE_OFF_SESSION
from tests.support.smtp import SMTPServer, text_of

FAILED = "Payment failed for test"  # every workspace of these tests is named "test"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
async def shop(tmp_path, fake_stripe, smtp) -> AsyncIterator[Shop]:
    fake_stripe.take()
    config = GatewayConfig.model_validate({"billing": billing_config()})
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    settings = {**billing_settings(fake_stripe), **smtp.settings()}
    async with admin_api(url, tmp_path, config, **settings) as api:
        yield Shop(api, fake_stripe)


async def _owner(shop: Shop, email: str) -> tuple[str, str]:
    workspace_id, _, token = await shop.customer(email)
    return workspace_id, token


async def _spend(shop: Shop, workspace_id: str, usd: float, reference: str) -> None:
    """Usage written to the ledger, as the usage writer does."""
    async with shop.api.plane.db.begin() as conn:
        moves = money.Moves()
        await money.add_entry(
            conn, moves, workspace_id, "usage", -round(usd * 1e6), reference, "usage"
        )


async def test_the_trial_reminder_goes_out_once_before_the_end(shop, smtp):
    ws, token = await _owner(shop, "trial@example.com")
    started = await shop.call(token, "POST", "/api/trials/start", {"workspace_id": ws})
    assert started.status_code == 201, started.text
    ends = dt.datetime.fromisoformat(started.json()["data"]["ends_at"])
    billing = shop.billing
    assert (await run_once(billing, ends - dt.timedelta(days=5)))["trial_reminders"] == 0
    for _ in range(3):  # passes on every instance, however often
        await run_once(billing, ends - dt.timedelta(days=2))
    [mail] = await smtp.inbox.wait_for(To="trial@example.com")
    assert (
        mail["Subject"].startswith("The trial of") and ends.strftime("%Y-%m-%d") in mail["Subject"]
    )
    assert f"/ui/w/{ws}/billing" in text_of(mail)
    await run_once(billing, ends - dt.timedelta(days=1))
    assert len(await smtp.inbox.wait_for(count=2, within=0.5, To="trial@example.com")) == 1


async def test_a_failed_renewal_mails_once_then_the_grace_period_ends_on_the_free_plan(shop, smtp):
    ws, token = await _owner(shop, "renewal@example.com")
    await shop.subscribe(token, ws, "pro")
    async with shop.api.plane.db.connect() as conn:
        sub = await conn.scalar(
            select(billing_accounts.c.subscription_id).where(billing_accounts.c.workspace_id == ws)
        )
    shop.fake.renew(sub, pay=False)
    failed = [e for e in shop.fake.outbox if e["type"] == "invoice.payment_failed"]
    await shop.deliver()
    payload, signature = shop.fake.signed(failed[0])  # Stripe delivers it again
    again = await shop.api.http.post(
        "/api/billing/stripe/webhook", content=payload, headers={"stripe-signature": signature}
    )
    assert again.status_code == 200
    [mail] = await smtp.inbox.wait_for(To="renewal@example.com", Subject=FAILED)
    assert "$40.00" in text_of(mail)

    billing = shop.billing
    grace = dt.timedelta(days=billing.config.grace_days)
    assert (await run_once(billing, utcnow() + grace - dt.timedelta(hours=1)))["downgraded"] == 0
    assert (await run_once(billing, utcnow() + grace + dt.timedelta(hours=1)))["downgraded"] == 1
    async with shop.api.plane.db.connect() as conn:
        settings = await conn.scalar(select(workspaces.c.settings).where(workspaces.c.id == ws))
    assert settings["plan"] == "free"
    assert len(smtp.inbox.to("renewal@example.com")) == 2  # the receipt and one failure


async def test_a_declined_recharge_mails_once_and_is_not_retried(shop, smtp):
    ws, token = await _owner(shop, "declined@example.com")
    await shop.top_up(token, ws, 10, number=DECLINE_OFF_SESSION)  # saved; charges later fail
    configured = await shop.call(
        token,
        "PUT",
        f"/api/workspaces/{ws}/billing/auto-recharge",
        {"enabled": True, "threshold_usd": 5, "amount_usd": 20},
    )
    assert configured.status_code == 200, configured.text
    await _spend(shop, ws, 6, "usage:declined")
    for _ in range(3):
        await run_once(shop.billing)
    attempts = [c for c in shop.fake.calls if c[:2] == ("POST", "payment_intents")]
    assert len(attempts) == 1  # one crossing, one charge, never in a loop
    await shop.deliver()  # Stripe's payment_intent.payment_failed for the same decline
    await smtp.inbox.wait_for(count=2, within=1.0, To="declined@example.com", Subject=FAILED)
    [mail] = [m for m in smtp.inbox.to("declined@example.com") if m["Subject"] == FAILED]
    assert "declined" in text_of(mail)
    assert await shop.balance(ws) == 4_000_000


async def test_low_balance_mails_once_per_fall_below_the_threshold(shop, smtp):
    ws, token = await _owner(shop, "low@example.com")
    await shop.top_up(token, ws, 10)
    low = billing_config().get("low_balance_usd", 5.0)
    await _spend(shop, ws, 10 - low + 1, "usage:first")  # $4 left, under $5
    for _ in range(3):
        await run_once(shop.billing)
    mails = await smtp.inbox.wait_for(To="low@example.com", Subject="test has $4.00 of credit left")
    assert len(mails) == 1
    await shop.top_up(token, ws, 10)  # back above: the notice is armed again
    await run_once(shop.billing)
    await _spend(shop, ws, 11, "usage:second")  # $3 left
    await run_once(shop.billing)
    await run_once(shop.billing)
    found = await smtp.inbox.wait_for(To="low@example.com", Subject="test has $3.00 of credit left")
    assert len(found) == 1
