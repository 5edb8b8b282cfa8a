"""Billing in the dashboard's access tests (test_access.py): on, against the fake Stripe,
each tenant subscribed, and the fresh things the billing forms act on."""

from __future__ import annotations

import itertools
from typing import Any

from perpetuo.config import GatewayConfig
from tests.control.billing.conftest import billing_config, billing_settings
from tests.support.admin_api import MASTER, bearer
from tests.support.fake_stripe import FakeStripe
from tests.support.people import make_user, sign_in

_counter = itertools.count()


def billing_options(fake: FakeStripe) -> tuple[GatewayConfig, dict[str, Any]]:
    return GatewayConfig.model_validate({"billing": billing_config()}), billing_settings(fake)


async def subscribe(api: Any, fake: FakeStripe, t: Any) -> None:
    """The tenant pays for the starter plan (so plan changes and cancellation have a
    subscription to act on), and someone outside it has a referral code."""
    owner = bearer(t.people["owner"].access_token)
    made = await api.http.post(
        f"/api/workspaces/{t.workspace_id}/billing/checkout",
        headers=owner,
        json={"plan_id": "starter"},
    )
    assert made.status_code == 201, made.text
    fake.complete_checkout(made.json()["data"]["id"])
    for answer in await fake.deliver(api.http):
        assert answer.status_code == 200, answer.text
    friend = await make_user(api.plane, f"friend-{t.marker}@example.com")
    token = (await sign_in(api.plane, friend)).access_token
    code = await api.http.get("/api/referrals", headers=bearer(token))
    t.ids["referral_code"] = code.json()["data"]["code"]


async def fresh_coupon(w: Any, t: Any) -> dict[str, str]:
    code = f"UIFRESH{next(_counter)}"
    made = await w.api.http.post(
        "/api/admin/coupons",
        headers=MASTER,
        json={"code": code, "kind": "credits", "credits_usd": 1},
    )
    assert made.status_code == 201, made.text
    return {"coupon_code": code}
