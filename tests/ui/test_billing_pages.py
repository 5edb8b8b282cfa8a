"""The billing and referrals pages in-process (the browser journey is test_paid_service.py):
off and out of the sections unless billing is on; the balance for every member and the
paying controls for admins only; Checkout reached by a redirect the page's policy allows;
refusals shown next to their field."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config import GatewayConfig
from perpetuo.store.billing_tables import referrals
from tests.control.billing.conftest import billing_config, billing_settings
from tests.support.admin_api import MASTER, admin_api
from tests.support.fake_stripe import FakeStripe
from tests.support.people import PASSWORD
from tests.ui.world import ORIGIN, csrf_of, world


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    stripe = FakeStripe().start()
    try:
        async with world(tmp_path, stripe) as made:
            made.stripe = stripe  # type: ignore[attr-defined]
            yield made
    finally:
        stripe.stop()


async def test_without_billing_the_pages_are_not_found_nor_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with world(tmp_path) as w:
        owner = w.a.people["owner"]
        base = f"/ui/w/{w.a.workspace_id}"
        for page in ("/billing", "/referrals"):
            assert (await owner.get(base + page)).status_code == 404
        assert (await owner.post(f"{base}/billing/topup", {"preset_usd": "10"})).status_code == 404
        overview = await owner.get(base)
        assert f'href="{base}/billing"' not in overview.text
        assert f'href="{base}/referrals"' not in overview.text


async def test_every_member_sees_the_balance_and_only_admins_the_controls(w):
    base = f"/ui/w/{w.a.workspace_id}"
    overview = await w.a.people["viewer"].get(base)
    assert f'href="{base}/billing"' in overview.text and f'href="{base}/referrals"' in overview.text
    for role in ("viewer", "member"):
        page = await w.a.people[role].get(f"{base}/billing")
        assert page.status_code == 200
        assert 'data-test="balance"' in page.text and "$5.00" in page.text  # starter's credit
        for control in ("billing/topup", "billing/portal", "billing/auto-recharge", "invoices-h"):
            assert control not in page.text, (role, control)
    page = await w.a.people["admin"].get(f"{base}/billing")
    for control in ("billing/topup", "billing/portal", "billing/auto-recharge", "invoices-h"):
        assert control in page.text, control
    assert "FAKE-" in page.text and "/invoice/in_" in page.text  # Stripe's hosted invoice


async def test_a_top_up_goes_to_checkout_which_the_pages_policy_allows(w):
    base = f"/ui/w/{w.a.workspace_id}"
    admin = w.a.people["admin"]
    page = await admin.get(f"{base}/billing")
    policy = page.headers["content-security-policy"]
    assert "form-action 'self' https://checkout.stripe.com" in policy
    assert w.stripe.url in policy  # the stand-in's hosted pages, in these tests
    for form in ({"preset_usd": "25"}, {"custom_usd": "12.5"}):
        went = await admin.post(f"{base}/billing/topup", form)
        assert went.status_code == 303, went.text
        assert went.headers["location"].startswith(f"{w.stripe.url}/pay/cs_test_")
    session = w.stripe.get(went.headers["location"].rsplit("/", 1)[-1])
    assert session["_line_items"][0]["price_data"]["unit_amount"] == "1250"  # form-encoded
    refused = await admin.post(f"{base}/billing/topup", {"custom_usd": "2"})
    assert refused.status_code == 422 and "between $5 and $1000" in refused.text


async def test_coupons_and_referral_codes_from_the_pages(w):
    base = f"/ui/w/{w.a.workspace_id}"
    admin = w.a.people["admin"]
    made = await w.api.http.post(
        "/api/admin/coupons",
        headers=MASTER,
        json={"code": "WELCOME3", "kind": "credits", "credits_usd": 3},
    )
    assert made.status_code == 201, made.text
    redeemed = await admin.post(f"{base}/billing/coupons", {"code": "welcome3"})
    assert redeemed.status_code == 303
    assert "$8.00" in (await admin.get(f"{base}/billing")).text  # 5 from the plan, 3 more
    again = await admin.post(f"{base}/billing/coupons", {"code": "WELCOME3"})
    assert again.status_code == 409 and "redeemed this coupon already" in again.text

    mine = await admin.get(f"{base}/referrals")
    assert 'data-test="referral-code"' in mine.text and "/ui/signup?ref=" in mine.text
    # A member of the workspace cannot be its referrer; a paid workspace is past referring.
    own_code = mine.text.split('data-test="referral-code">', 1)[1].split("<", 1)[0]
    refused = await admin.post(f"{base}/referrals/attach", {"code": own_code})
    assert refused.status_code == 422 and "its own members" in refused.text
    late = await admin.post(f"{base}/referrals/attach", {"code": w.a.ids["referral_code"]})
    assert late.status_code == 409 and "has paid already" in late.text


async def test_a_referral_link_names_the_referrer_of_the_first_workspace_made(w):
    code = w.a.ids["referral_code"]  # someone outside both tenants
    async with w.api.client("127.0.0.1") as http:
        signup = await http.get(f"/ui/signup?ref={code.lower()}")
        form = {"email": "referred@example.com", "password": PASSWORD, "name": "Ref"}
        form["csrf_token"] = csrf_of(signup.text)
        made = await http.post("/ui/signup", data=form, headers={"origin": ORIGIN})
        assert made.status_code == 303, made.text
        listing = await http.get("/ui/workspaces")
        created = await http.post(
            "/ui/workspaces",
            data={"name": "Referred", "csrf_token": csrf_of(listing.text)},
            headers={"origin": ORIGIN},
        )
        assert created.status_code == 303, created.text
        workspace_id = created.headers["location"].rsplit("/", 1)[-1]
        again = await http.post(  # a second workspace is not referred: the code was used
            "/ui/workspaces",
            data={"name": "Second", "csrf_token": csrf_of(listing.text)},
            headers={"origin": ORIGIN},
        )
        assert again.status_code == 303
    async with w.api.plane.db.connect() as conn:
        rows = (await conn.execute(select(referrals.c.workspace_id, referrals.c.code))).all()
    referred = [r for r in rows if r.code == code]
    assert [(r.workspace_id, r.code) for r in referred] == [(workspace_id, code)]


async def test_the_pricing_page_lists_the_plans_on_sale(tmp_path):
    stripe = FakeStripe().start()
    config = GatewayConfig.model_validate(
        {"billing": billing_config(), "public": {"pricing": True}}
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    try:
        async with admin_api(url, tmp_path, config, **billing_settings(stripe)) as api:
            page = (await api.http.get("/ui/pricing")).text
    finally:
        stripe.stop()
    plans = re.findall(r'data-plan="([^"]+)"', page)
    assert plans == ["free", "starter", "pro"]  # the catalog's, not the limits tiers
    row = page.split('data-plan="pro"', 1)[1].split("</tr>", 1)[0]
    assert "$40.00 / month" in row and ">300<" in row  # the plan's own rpm over its tier's
    assert "free" in page.split('data-plan="free"', 1)[1].split("</tr>", 1)[0]
