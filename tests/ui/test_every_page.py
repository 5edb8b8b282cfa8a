"""Every dashboard page, as a workspace admin with data in it, at laptop and phone widths: no
console error, no failed request, no page asset answering 400 or more. Each page is kept as a
screenshot in test-artifacts/ui/every-*.png. Also the section menu at phone width: a button
that opens it, used from the keyboard."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.gateway import MASTER_KEY
from tests.ui.conftest import ARTIFACTS, LAPTOP, PHONE, Shop, open_page, sign_up
from tests.ui.shop_steps import verified_customer

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
WIDTHS = {"laptop": LAPTOP, "phone": PHONE}


def fill_workspace(base_url: str, workspace_id: str, upstream: str) -> dict[str, str]:
    """A credential on the mock upstream, an alias on it, a key, an invitation, an alert
    channel and rule, and requests made with the key (one of them failing), through the admin
    API and the data plane."""
    api = httpx.Client(base_url=f"{base_url}/api/workspaces/{workspace_id}", headers=MASTER)
    made = {}
    for path, body in (
        (
            "credentials",
            {
                "name": "mock",
                "provider_type": "openai",
                "api_key": "sk-test-openai",
                "api_base": upstream,
            },
        ),
        ("keys", {"name": "pages-key"}),
        ("invites", {"email": "someone@example.com"}),
        ("alert-channels", {"name": "ops", "kind": "webhook", "url": f"{upstream}/alert-hook"}),
    ):
        response = api.post(f"/{path}", json=body)
        assert response.status_code == 201, response.text
        made[path] = response.json()["data"]
    model = api.post(
        "/models",
        json={
            "alias": "pages-chat",
            "deployments": [{"credential_id": made["credentials"]["id"], "model": "gpt-4o-mini"}],
        },
    )
    assert model.status_code == 201, model.text
    rule = api.post(
        "/alert-rules",
        json={
            "name": "Failing deployment",
            "kind": "deployment_degraded",
            "params": {"condition": "error_rate", "threshold": 0.2},
            "channel_ids": [made["alert-channels"]["id"]],
        },
    )
    assert rule.status_code == 201, rule.text
    sdk = openai.OpenAI(base_url=f"{base_url}/v1", api_key=made["keys"]["key"], max_retries=0)
    for text in ("first", "second"):
        sdk.chat.completions.create(
            model="pages-chat", messages=[{"role": "user", "content": text}]
        )
    with pytest.raises(openai.NotFoundError):  # an error for the logs and charts to show
        sdk.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    return {"key_id": made["keys"]["id"]}


def first_request_id(page: Page, workspace: str) -> str:
    """Wait for the request-log writer (it batches) and return the newest request's id."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        page.goto(f"{workspace}/logs")
        rows = page.locator("tr[data-request]")
        if rows.count() >= 2:
            return rows.first.get_attribute("data-request") or ""
        time.sleep(0.3)
    raise AssertionError("the requests never reached the log")


def watch(page: Page, problems: list[str], origin: str) -> None:
    """Record console errors, failed requests and error answers for the page's own assets."""
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "requestfailed",
        lambda request: problems.append(f"failed: {request.url} ({request.failure})"),
    )

    def answered(response: Any) -> None:
        if response.status >= 400 and response.url.startswith(origin):
            problems.append(f"{response.status}: {response.url}")

    page.on("response", answered)


def test_every_page_loads_cleanly_at_laptop_and_phone_widths(chromium, ui_gateway, openai_mock):
    chromium.run(lambda browser: every_page(browser, ui_gateway.url, f"{openai_mock.url}/v1"))


def every_page(browser: Browser, base_url: str, upstream: str) -> None:
    setup = open_page(browser, base_url)
    sign_up(setup, "pages@example.com", "Paige Admin")
    setup.get_by_label("Workspace name").fill("Every page")
    setup.get_by_role("button", name="Create workspace").click()
    expect(setup.get_by_role("heading", name="Every page", exact=True)).to_be_visible()
    workspace = setup.url.rstrip("/")
    ids = fill_workspace(base_url, workspace.rsplit("/", 1)[-1], upstream)
    request_id = first_request_id(setup, workspace)
    state = setup.context.storage_state()
    setup.context.close()

    pages = {
        "workspaces": "/ui/workspaces",
        "account": "/ui/account",
        "overview": workspace,
        **{
            slug: f"{workspace}/{slug}"
            for slug in (
                "playground",
                "models",
                "providers",
                "keys",
                "logs",
                "sessions",
                "usage",
                "limits",
                "alerts",
                "members",
                "teams",
                "audit",
                "sso",
                "settings",
            )
        },
        "model-new": f"{workspace}/models/new",
        "model-edit": f"{workspace}/models/edit?alias=pages-chat",
        "key": f"{workspace}/keys/{ids['key_id']}",
        "log": f"{workspace}/logs/{request_id}",
        "usage-30d": f"{workspace}/usage?range=30d",
    }
    check_pages(browser, base_url, state, pages)


def check_pages(browser: Browser, base_url: str, state: Any, pages: dict[str, str]) -> None:
    """Open each page signed in with `state`, at each width, and collect what went wrong."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    for width, viewport in WIDTHS.items():
        context = browser.new_context(base_url=base_url, viewport=viewport, storage_state=state)
        context.set_default_timeout(15_000)
        for name, url in pages.items():
            found: list[str] = []
            page = context.new_page()  # a fresh page each time: its listeners report on it alone
            watch(page, found, base_url)
            response = page.goto(url)
            assert response is not None and response.status == 200, (name, width)
            page.wait_for_load_state("networkidle")
            # Headless Chromium asks for no icon; a browser with a window asks for the linked
            # one, or for /favicon.ico (a 404 and a console error) when none is linked.
            icon = page.evaluate("document.querySelector('link[rel~=icon]')?.href ?? null")
            if icon is None or page.request.get(icon).status != 200:
                found.append(f"no favicon to load (linked: {icon})")
            page.screenshot(path=ARTIFACTS / f"every-{name}-{width}.png", full_page=True)
            if found:
                problems[f"{name} at {width} width"] = found
            page.close()
        context.close()
    assert problems == {}


def test_billing_pages_load_cleanly_at_laptop_and_phone_widths(chromium, shop):
    chromium.run(lambda browser: billing_pages(browser, shop))


def billing_pages(browser: Browser, shop: Shop) -> None:
    """The billing and referrals pages of a workspace on a paid plan (a subscription, a
    payment and an invoice to show), and the billing page back from Checkout."""
    setup = open_page(browser, shop.url)
    workspace = verified_customer(setup, shop, "billing-pages@example.com", "Billing pages")
    api = f"{shop.url}/api/workspaces/{workspace.rsplit('/', 1)[-1]}/billing"
    made = httpx.post(f"{api}/checkout", headers=MASTER, json={"plan_id": "starter"})
    assert made.status_code == 201, made.text
    shop.stripe.complete_checkout(made.json()["data"]["id"])  # its webhooks go out at once
    deadline = time.monotonic() + 15
    while httpx.get(api, headers=MASTER).json()["data"]["subscription_status"] != "active":
        assert time.monotonic() < deadline, "the subscription never became active"
        time.sleep(0.1)
    setup.goto(f"{workspace}/billing")
    expect(setup.locator("[data-test=invoices] tbody tr")).to_have_count(1)
    expect(setup.get_by_role("link", name="Referrals")).to_be_visible()  # in the sections
    state = setup.context.storage_state()
    setup.context.close()
    pages = {
        "billing": f"{workspace}/billing",
        "billing-back-from-checkout": f"{workspace}/billing?checkout=done",
        "referrals": f"{workspace}/referrals",
    }
    check_pages(browser, shop.url, state, pages)


def test_the_section_menu_at_phone_width(chromium, ui_gateway):
    chromium.run(lambda browser: section_menu(browser, ui_gateway.url))


def section_menu(browser: Browser, base_url: str) -> None:
    page = open_page(browser, base_url)
    sign_up(page, "menu@example.com")
    page.get_by_label("Workspace name").fill("Menus")
    page.get_by_role("button", name="Create workspace").click()
    workspace = page.url.rstrip("/")
    nav = page.get_by_role("navigation", name="Workspace sections")
    toggle = nav.get_by_role("button", name="Sections")
    # At laptop width the sections are listed and the button is not there.
    expect(toggle).to_be_hidden()
    expect(nav.get_by_role("link", name="Limits and plan")).to_be_visible()

    page.set_viewport_size(PHONE)
    page.goto(f"{workspace}/usage")
    expect(toggle).to_be_visible()
    expect(toggle).to_contain_text("Usage and cost")  # says where one is
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav.get_by_role("link", name="Providers")).to_be_hidden()
    # From the keyboard: Tab to the button, Enter opens, every label whole, Escape closes.
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('nav-toggle')"):
            break
    else:
        raise AssertionError("the menu button cannot be reached with Tab")
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    links = nav.get_by_role("link")
    assert links.count() >= 10
    for i in range(links.count()):
        link = links.nth(i)
        expect(link).to_be_visible()
        cut = link.evaluate(
            "a => a.scrollWidth > a.clientWidth || a.getBoundingClientRect().right > innerWidth"
        )
        assert not cut, link.inner_text()
    page.screenshot(path=ARTIFACTS / "every-menu-open-phone.png", full_page=False)
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()
    expect(nav.get_by_role("link", name="Providers")).to_be_hidden()
    # Opened again with a click, a section is one tap away.
    toggle.click()
    nav.get_by_role("link", name="Limits and plan").click()
    expect(page).to_have_url(f"{workspace}/limits")
    page.context.close()
