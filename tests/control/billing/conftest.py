"""Billing against the fake Stripe: the real gateway application in-process, its billing on,
and helpers to make workspaces that pay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from perpetuo.config import GatewayConfig
from perpetuo.control.billing import Billing
from tests.support.admin_api import AdminAPI, admin_api, bearer
from tests.support.fake_stripe import SECRET, FakeStripe
from tests.support.people import make_user, make_workspace, sign_in

PLANS = [
    {"id": "free", "name": "Free", "tier": "free"},
    {
        "id": "starter",
        "name": "Starter",
        "tier": "starter",
        "monthly_usd": 10,
        "annual_usd": 100,
        "credits_usd": 5,
        "features": ["Email support"],
    },
    {
        "id": "pro",
        "name": "Pro",
        "tier": "pro",
        "monthly_usd": 40,
        "annual_usd": 400,
        "credits_usd": 20,
        "limits": {"rpm": 300, "max_parallel": 8},
    },
]


def billing_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "enabled": True,
        "plans": PLANS,
        "free_plan": "free",
        "trial": {"enabled": True, "plan": "starter", "days": 14, "credits_usd": 5},
        "referrals": {"enabled": True, "max_rewards_per_referrer": 2},
    }
    config.update(overrides)
    return config


def billing_settings(fake: FakeStripe) -> dict[str, Any]:
    return {
        "stripe_secret_key": "sk_test_fake",
        "stripe_webhook_secret": SECRET,
        "stripe_api_base": fake.url,
        "billing_interval": 3600.0,  # tests run passes themselves
    }


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@dataclass
class Shop:
    api: AdminAPI
    fake: FakeStripe

    @property
    def billing(self) -> Billing:
        billing = self.api.plane.billing
        assert billing is not None
        return billing

    async def customer(self, email: str | None = None) -> tuple[str, str, str]:
        """(workspace id, owner's user id, owner's access token)."""
        user = await make_user(self.api.plane, email)
        workspace_id = await make_workspace(self.api.plane, {user: "owner"})
        token = (await sign_in(self.api.plane, user)).access_token
        return workspace_id, user, token

    async def call(self, token: str, method: str, path: str, body: Any = None) -> Any:
        return await self.api.http.request(method, path, headers=bearer(token), json=body)

    async def deliver(self) -> list[Any]:
        answers = await self.fake.deliver(self.api.http)
        for answer in answers:
            assert answer.status_code == 200, answer.text
        return answers

    async def subscribe(
        self, token: str, workspace_id: str, plan: str = "pro", number: str = "4242424242424242"
    ) -> dict[str, Any]:
        made = await self.call(
            token, "POST", f"/api/workspaces/{workspace_id}/billing/checkout", {"plan_id": plan}
        )
        assert made.status_code == 201, made.text
        session = made.json()["data"]
        self.fake.complete_checkout(session["id"], number)
        await self.deliver()
        return session

    async def top_up(
        self, token: str, workspace_id: str, usd: float, number: str = "4242424242424242"
    ) -> str:
        made = await self.call(
            token, "POST", f"/api/workspaces/{workspace_id}/billing/topup", {"amount_usd": usd}
        )
        assert made.status_code == 201, made.text
        session_id = made.json()["data"]["id"]
        self.fake.complete_checkout(session_id, number)
        await self.deliver()
        return self.fake.get(session_id)["payment_intent"]

    async def balance(self, workspace_id: str) -> int:
        from perpetuo.control.billing import money

        async with self.api.plane.db.connect() as conn:
            return await money.balance(conn, workspace_id)


@pytest.fixture
async def shop(tmp_path, fake_stripe) -> AsyncIterator[Shop]:
    fake_stripe.take()
    config = GatewayConfig.model_validate({"billing": billing_config()})
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, config, **billing_settings(fake_stripe)) as api:
        yield Shop(api, fake_stripe)


@pytest.fixture
async def pg_shop(tmp_path, fake_stripe, postgres) -> AsyncIterator[Shop]:
    import uuid

    fake_stripe.take()
    config = GatewayConfig.model_validate({"billing": billing_config()})
    url = postgres.create_database(f"billing_{uuid.uuid4().hex[:8]}")
    async with admin_api(url, tmp_path, config, **billing_settings(fake_stripe)) as api:
        yield Shop(api, fake_stripe)
