"""The dashboard under test: one real gateway process (its upstream the OpenAI mock) and one
headless Chromium (Debian's, driven by Playwright's sync API) for the whole session.

Playwright's sync API keeps an event loop of its own on the thread that uses it, and the
async tests of the same session need theirs: so the browser lives on a thread of its own and
browser tests hand it their steps (`chromium.run(steps)`), which run there and report back.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from perpetuo.auth.credential_crypto import new_key_spec
from tests.mocks import openai_mock
from tests.support.fake_stripe import SECRET as STRIPE_SECRET
from tests.support.fake_stripe import FakeStripe
from tests.support.gateway import GatewayProcess
from tests.support.smtp import SMTPServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "Correct-horse-42"


class BrowserThread:
    """One Chromium on its own thread; `run(steps)` runs `steps(browser)` there."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, name="chromium", daemon=True)
        self._thread.start()
        self._started.result(timeout=60)

    def _serve(self) -> None:
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                self._started.set_result(None)
                while (job := self._jobs.get()) is not None:
                    steps, done = job
                    try:
                        done.set_result(steps(browser))
                    except BaseException as exc:
                        done.set_exception(exc)
                browser.close()
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            raise

    def run(self, steps: Callable[[Browser], Any]) -> Any:
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((steps, done))
        return done.result(timeout=300)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)


@pytest.fixture(scope="session")
def chromium() -> Iterator[BrowserThread]:
    thread = BrowserThread()
    yield thread
    thread.close()


@pytest.fixture(scope="session")
def ui_gateway(mocks, tmp_path_factory) -> Iterator[GatewayProcess]:
    mock = mocks["openai"]
    config = {
        # Tenants' credentials in these tests point at local mocks.
        "egress": {"allow_http": True, "allow_private": True},
        "providers": {
            "openai-platform": {
                "type": "openai",
                "api_base": f"{mock.url}/v1",
                "api_key": "${TEST_OPENAI_KEY}",
            }
        },
        "models": {
            "gpt-4o-mini": {
                "deployments": [{"provider": "openai-platform", "model": "gpt-4o-mini"}]
            }
        },
    }
    env = {
        **openai_mock.ENV,
        "PERPETUO_SIGNUP": "open",
        "PERPETUO_ENCRYPTION_KEYS": new_key_spec("ui"),
    }
    process = GatewayProcess(config, tmp_path_factory.mktemp("ui"), env=env).start()
    # The platform's administrator signs up first, so the people in these tests are ordinary
    # users (the first account on a server administers the platform).
    admin = {"email": "platform-admin@example.com", "password": PASSWORD}
    response = httpx.post(f"{process.url}/api/auth/signup", json=admin, timeout=30)
    assert response.status_code == 201, response.text
    yield process
    process.stop()


def open_page(browser: Browser, base_url: str) -> Page:
    """A fresh browser context (its own cookies) at laptop width, with clipboard access."""
    context = browser.new_context(
        base_url=base_url, viewport=LAPTOP, permissions=["clipboard-read", "clipboard-write"]
    )
    context.set_default_timeout(15_000)
    return context.new_page()


def shoot(page: Page, name: str) -> None:
    """Save the page at laptop and phone widths (test-artifacts/ui/NAME-laptop.png, -phone)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}-laptop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=ARTIFACTS / f"{name}-phone.png", full_page=True)
    page.set_viewport_size(LAPTOP)


def sign_up(page: Page, email: str, name: str = "", invite_url: str | None = None) -> None:
    page.goto(invite_url or "/ui/signup")
    if invite_url:
        page.get_by_role("link", name="Create an account").click()
    if name:
        page.get_by_label("Your name").fill(name)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/ui/**")


@dataclass
class Shop:
    """A gateway that sells plans and credits: Stripe is the fake (its webhooks posted to the
    gateway as soon as they happen), mail goes to an SMTP server in this process."""

    gateway: GatewayProcess
    stripe: FakeStripe
    smtp: SMTPServer

    @property
    def url(self) -> str:
        return self.gateway.url


SHOP_PLANS = [
    {"id": "free", "name": "Free", "tier": "free"},
    {
        "id": "starter",
        "name": "Starter",
        "tier": "starter",
        "monthly_usd": 10,
        "annual_usd": 100,
        "credits_usd": 10,
        "features": ["Email support"],
    },
    {"id": "pro", "name": "Pro", "tier": "pro", "monthly_usd": 40, "credits_usd": 40},
]
# What one token costs on the shop's model: a few requests spend dollars, not micro-dollars.
SHOP_PRICE = {"input": 50_000.0, "output": 50_000.0}


@pytest.fixture(scope="session")
def shop(mocks, tmp_path_factory) -> Iterator[Shop]:
    stripe = FakeStripe().start()
    smtp = SMTPServer().start()
    config = {
        "egress": {"allow_http": True, "allow_private": True},
        "providers": {
            "openai-platform": {
                "type": "openai",
                "api_base": f"{mocks['openai'].url}/v1",
                "api_key": "${TEST_OPENAI_KEY}",
            }
        },
        "models": {
            "gpt-4o-mini": {
                "deployments": [
                    {"provider": "openai-platform", "model": "gpt-4o-mini", "price": SHOP_PRICE}
                ]
            }
        },
        "billing": {
            "enabled": True,
            "plans": SHOP_PLANS,
            "free_plan": "free",
            "low_balance_usd": 4,
            "trial": {"enabled": True, "plan": "starter", "days": 14, "credits_usd": 5},
            "referrals": {"enabled": True},
        },
    }
    gateway = GatewayProcess(config, tmp_path_factory.mktemp("shop"))
    gateway.env = {
        **openai_mock.ENV,
        "PERPETUO_SIGNUP": "open",
        "PERPETUO_ENCRYPTION_KEYS": new_key_spec("shop"),
        "PERPETUO_REQUIRE_EMAIL_VERIFICATION": "true",
        "PERPETUO_STRIPE_SECRET_KEY": "sk_test_fake",
        "PERPETUO_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "PERPETUO_STRIPE_API_BASE": stripe.url,
        "PERPETUO_BILLING_INTERVAL": "0.3",
        **{f"PERPETUO_{k.upper()}": str(v) for k, v in smtp.settings().items()},
        "PERPETUO_PUBLIC_URL": gateway.url,  # links in mail and Stripe's return addresses
    }
    stripe.webhook_url = f"{gateway.url}/api/billing/stripe/webhook"
    gateway.start(timeout=60)  # a loaded machine starts slowly
    admin = {"email": "shop-admin@example.com", "password": PASSWORD}  # the platform's
    response = httpx.post(f"{gateway.url}/api/auth/signup", json=admin, timeout=30)
    assert response.status_code == 201, response.text
    yield Shop(gateway, stripe, smtp)
    gateway.stop()
    smtp.stop()
    stripe.stop()
