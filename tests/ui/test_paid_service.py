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
    key_usage,
    mails_to,
    verified_customer,
    wait_for_credits,
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
    deadline = time.monotonic() + 30  # webhooks and passes on a busy machine
    while balance_shown(page) != text:
        assert time.monotonic() < deadline, f"the page shows {balance_shown(page)}, not {text}"
        time.sleep(0.2)
        page.reload()


def journey(browser: Browser, shop: Shop) -> None:
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
    expect(page.locator("[data-test=trial]")).to_contain_text("The trial became a paid plan")
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
    seen = [TRIAL + STARTER]
    for _ in range(40):
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=8
        )
        seen.append(credits(shop, key)["remaining"])
        if seen[-1] < THRESHOLD or seen[-1] > seen[-2]:  # under it, or recharged already
            break
    assert seen[-1] < THRESHOLD or seen[-1] > seen[-2], seen
    assert min(seen) >= 0, seen  # credit is reserved before a request: never spent past zero

    def agrees(seen: dict[str, float], total: float) -> bool:
        """The live balance is the credit less what the key spent; the key's usage comes from
        the request log, which may be one batch behind the balance for a moment."""
        return abs(seen["remaining"] - (total - key_usage(shop, key))) < 0.01

    paid = TRIAL + STARTER + RECHARGE
    recharged = wait_for_credits(
        shop, key, lambda c: c["total_credits"] >= paid and agrees(c, paid), "recharge"
    )
    assert agrees(recharged, paid), recharged
    [low_mail] = wait_for_mail(shop, EMAIL, "credit left")
    assert "of credit left" in str(low_mail["Subject"])

    # Part of the recharge is refunded: that share of its credit is taken back.
    [intent] = [
        o
        for o in list(shop.stripe.objects.values())
        if o["object"] == "payment_intent"
        and o["metadata"].get("workspace_id") == workspace_id
        and o["metadata"].get("kind") == "recharge"
    ]
    shop.stripe.refund(intent["id"], round(REFUND * 100))
    kept = paid - REFUND
    final = wait_for_credits(
        shop, key, lambda c: c["total_credits"] <= kept + 1e-6 and agrees(c, kept), "refund"
    )
    assert abs(final["total_credits"] - kept) < 1e-6, final
    assert agrees(final, kept), final
    page.goto(f"{workspace}/billing")
    assert balance_shown(page) == f"${final['remaining']:,.2f}"
    assert len(mails_to(shop, EMAIL, "credit left")) == 1  # once per crossing, not per pass
