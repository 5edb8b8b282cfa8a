"""A customer's whole money path in the browser, against the fake Stripe and a real SMTP
server: sign up and confirm the address from the mail, start the trial, upgrade through
Checkout (the fake completes it and posts the signed webhooks), see the plan's credit,
spend it through the API with a key, get the low-balance mail, be recharged automatically,
have part of the recharge refunded, and find the balance equal to what was paid, granted,
spent and taken back."""

from __future__ import annotations

import time

import httpx
import openai
from playwright.sync_api import Browser, Page, expect

from tests.support.gateway import MASTER_KEY
from tests.ui.conftest import Shop, open_page
from tests.ui.shop_steps import (
    credits,
    mails_to,
    verified_customer,
    wait_for_balance,
    wait_for_mail,
)

EMAIL = "payer@example.com"
TRIAL, STARTER, RECHARGE, REFUND, THRESHOLD = 5.0, 10.0, 25.0, 10.0, 4.0


def test_sign_up_trial_checkout_spend_recharge_refund(chromium, shop):
    chromium.run(lambda browser: journey(browser, shop))


def balance_shown(page: Page) -> str:
    return page.locator("[data-test=balance] .stat-value").inner_text()


def wait_for_page_balance(page: Page, text: str) -> None:
    """Reload the billing page until it shows `text` (Stripe's webhooks arrive on their own)."""
    deadline = time.monotonic() + 15
    while balance_shown(page) != text:
        assert time.monotonic() < deadline, f"the page shows {balance_shown(page)}, not {text}"
        time.sleep(0.2)
        page.reload()


def journey(browser: Browser, shop: Shop) -> None:
    started = time.monotonic()
    page = open_page(browser, shop.url)
    workspace = verified_customer(page, shop, EMAIL, "Paying customer")
    workspace_id = workspace.rsplit("/", 1)[-1]

    page.goto(f"{workspace}/billing")
    page.get_by_role("button", name="Start the trial").click()
    expect(page.get_by_role("status").filter(has_text="Your trial has started")).to_be_visible()
    assert balance_shown(page) == "$5.00"

    # Upgrade: Stripe's Checkout page (the fake's), then back with the plan's credit.
    page.locator("tr[data-plan=starter]").get_by_role("button", name="Subscribe").click()
    page.wait_for_url(f"{shop.stripe.url}/pay/**")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url("**/billing?checkout=done")
    wait_for_page_balance(page, f"${TRIAL + STARTER:.2f}")
    expect(page.locator("[data-test=plan] .stat-value")).to_have_text("Starter")
    wait_for_mail(shop, EMAIL, "receipt")

    page.get_by_label("Recharge automatically").check()
    page.get_by_label("Threshold (USD)").fill(str(THRESHOLD))
    page.get_by_label("Amount to add (USD)").fill(str(RECHARGE))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Automatic recharge is on")).to_be_visible()

    # Spend through the API with a key until the balance is under the threshold.
    made = httpx.post(
        f"{shop.url}/api/workspaces/{workspace_id}/keys",
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        json={"name": "spender"},
    )
    assert made.status_code == 201, made.text
    key = made.json()["data"]["key"]
    sdk = openai.OpenAI(base_url=f"{shop.url}/v1", api_key=key, max_retries=0)
    assert mails_to(shop, EMAIL, "credit left") == []
    for _ in range(40):
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=8
        )
        if credits(shop, key)["remaining"] < THRESHOLD:
            break
    low = credits(shop, key)["remaining"]
    assert 0 <= low < THRESHOLD, low

    [low_mail] = wait_for_mail(shop, EMAIL, "credit left")
    assert f"${low:.2f}" in str(low_mail["Subject"]), low_mail["Subject"]
    recharged = wait_for_balance(shop, key, lambda left: left > THRESHOLD, "automatic recharge")
    assert abs(recharged["remaining"] - (low + RECHARGE)) < 0.01, recharged

    # Part of the recharge is refunded: that share of its credit is taken back.
    [intent] = [
        o
        for o in list(shop.stripe.objects.values())
        if o["object"] == "payment_intent"
        and o["metadata"].get("workspace_id") == workspace_id
        and o["metadata"].get("kind") == "recharge"
    ]
    shop.stripe.refund(intent["id"], round(REFUND * 100))
    before = recharged["remaining"]
    final = wait_for_balance(shop, key, lambda left: left < before - 1, "refund")

    spent = httpx.get(
        f"{shop.url}/v1/key", headers={"authorization": f"Bearer {key}"}, timeout=10
    ).json()["data"]["usage"]
    assert abs(final["total_credits"] - (TRIAL + STARTER + RECHARGE - REFUND)) < 1e-6, final
    assert abs(final["remaining"] - (final["total_credits"] - spent)) < 0.01, (final, spent)
    page.goto(f"{workspace}/billing")
    assert balance_shown(page) == f"${final['remaining']:,.2f}"
    assert len(mails_to(shop, EMAIL, "credit left")) == 1  # once per crossing, not per pass
    assert time.monotonic() - started < 60
