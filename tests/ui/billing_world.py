"""Billing in the dashboard's access tests (test_access.py): on, against the fake Stripe,
each tenant subscribed, and the fresh things the billing forms act on."""

from __future__ import annotations

import itertools
from typing import Any

from tests.api.billing_isolation import billing_options, subscribe_tenant
from tests.support.admin_api import MASTER
from tests.support.fake_stripe import FakeStripe

__all__ = ["billing_options", "fresh_coupon", "subscribe"]

_counter = itertools.count()


async def subscribe(api: Any, fake: FakeStripe, t: Any) -> None:
    """The tenant subscribes, and someone outside it has a referral code."""
    owner_token = t.people["owner"].access_token
    code = await subscribe_tenant(api, fake, t.workspace_id, owner_token, t.marker)
    t.ids["referral_code"] = code


async def fresh_coupon(w: Any, t: Any) -> dict[str, str]:
    code = f"UIFRESH{next(_counter)}"
    made = await w.api.http.post(
        "/api/admin/coupons",
        headers=MASTER,
        json={"code": code, "kind": "credits", "credits_usd": 1},
    )
    assert made.status_code == 201, made.text
    return {"coupon_code": code}
