"""The billing part of the isolation suite (test_isolation.py): billing on, against the fake
Stripe, each tenant subscribed, and the billing routes' classification."""

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


async def subscribe_tenant(
    api: Any, fake: FakeStripe, workspace_id: str, owner_token: str, marker: str
) -> str:
    """The workspace pays for the starter plan (so plan changes and cancellation have a
    subscription to act on); answers the referral code of someone outside it."""
    made = await api.http.post(
        f"/api/workspaces/{workspace_id}/billing/checkout",
        headers=bearer(owner_token),
        json={"plan_id": "starter"},
    )
    assert made.status_code == 201, made.text
    fake.complete_checkout(made.json()["data"]["id"])
    for answer in await fake.deliver(api.http):
        assert answer.status_code == 200, answer.text
    friend = await make_user(api.plane, f"friend-{marker}@example.com")
    token = (await sign_in(api.plane, friend)).access_token
    code = await api.http.get("/api/referrals", headers=bearer(token))
    return code.json()["data"]["code"]


async def fill_billing(api: Any, fake: FakeStripe, t: Any) -> None:
    """The tenant subscribes, someone outside it has a referral code, and a coupon exists."""
    code = await subscribe_tenant(api, fake, t.workspace_id, t.tokens["owner"], t.marker)
    t.ids["referral_code"] = code
    coupon = await api.http.post(
        "/api/admin/coupons",
        headers=MASTER,
        json={"code": f"C{t.marker}", "kind": "credits", "credits_usd": 1},
    )
    t.ids["coupon_id"] = coupon.json()["data"]["id"]


async def fresh_coupon(world: Any, t: Any) -> dict[str, str]:
    code = f"FRESH{next(_counter)}"
    made = await world.api.http.post(
        "/api/admin/coupons",
        headers=MASTER,
        json={"code": code, "kind": "credits", "credits_usd": 1},
    )
    assert made.status_code == 201, made.text
    t.ids["coupon_code"] = code
    return {}


def route_table(route: Any, fresh_workspace: Any) -> dict[tuple[str, str], Any]:
    base = "/api/workspaces/{workspace_id}/billing"
    return {
        ("GET", base): route("viewer"),
        ("POST", f"{base}/checkout"): route("admin", lambda t: {"plan_id": "pro"}, fresh_workspace),
        ("POST", f"{base}/topup"): route("admin", lambda t: {"amount_usd": 10}),
        ("POST", f"{base}/portal"): route("admin"),
        ("POST", f"{base}/plan"): route("admin", lambda t: {"plan_id": "pro"}),
        ("POST", f"{base}/cancel"): route("admin"),
        ("POST", f"{base}/resume"): route("admin"),
        ("PUT", f"{base}/auto-recharge"): route(
            "admin", lambda t: {"enabled": True, "threshold_usd": 5, "amount_usd": 10}
        ),
        ("GET", f"{base}/invoices"): route("admin"),
        ("POST", f"{base}/coupons"): route(
            "admin", lambda t: {"code": t.ids.get("coupon_code", "NONE")}, fresh_coupon
        ),
        ("POST", f"{base}/referral"): route(
            "admin", lambda t: {"code": t.ids["referral_code"]}, fresh_workspace
        ),
    }


SELF_ROUTES = {
    ("GET", "/api/plans"),
    ("GET", "/api/plans/{plan_id}"),
    ("GET", "/api/referrals"),
    ("POST", "/api/billing/stripe/webhook"),  # Stripe's, signed: tested in tests/control/billing
}
PLATFORM_ROUTES = {("GET", "/api/admin/coupons"), ("POST", "/api/admin/billing/sync")}
# Platform routes that take a body or a coupon id: (path template, body).
PLATFORM_BODY_ROUTES = {
    ("POST", "/api/admin/coupons"): lambda t: {
        "code": f"P{next(_counter)}{t.marker}",
        "kind": "credits",
        "credits_usd": 1,
    },
    ("POST", "/api/admin/coupons/{coupon_id}/disable"): lambda t: None,
}
# The workspace is named in the body or the query (a contract clients use).
NAMED_WORKSPACE_ROUTES = {
    ("POST", "/api/trials/start"): (
        "admin",
        lambda ws: ("/api/trials/start", {"workspace_id": ws}),
    ),
    ("GET", "/api/trials/status"): (
        "viewer",
        lambda ws: (f"/api/trials/status?workspace_id={ws}", None),
    ),
}
