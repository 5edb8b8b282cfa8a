"""The dashboard under test: one real gateway process (its upstream the OpenAI mock) and one
headless Chromium (Debian's, driven by Playwright) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from perpetuo.auth.credential_crypto import new_key_spec
from tests.mocks import openai_mock
from tests.support.gateway import GatewayProcess

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


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def ui_gateway(mocks, tmp_path_factory) -> Iterator[GatewayProcess]:
    mock = mocks["openai"]
    config = {
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


@pytest.fixture
def page(browser: Browser, ui_gateway: GatewayProcess) -> Iterator[Page]:
    context = browser.new_context(
        base_url=ui_gateway.url, viewport=LAPTOP, permissions=["clipboard-read", "clipboard-write"]
    )
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


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
