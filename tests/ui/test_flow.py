"""The whole product from the dashboard, in a real browser: sign up, create a workspace, add a
provider credential, make an alias, create a key (copying the once-shown key), use it from the
openai SDK against the mock upstream, see the requests in the logs and the usage charts, chat
in the playground, revoke the key, and watch the SDK fail. Every page is photographed at laptop
and phone widths into test-artifacts/ui/."""

from __future__ import annotations

import re
import time

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import PASSWORD, open_page, shoot, sign_up


def wait_for_rows(page: Page, url: str, selector: str, count: int) -> None:
    """Reload until the request-log writer has flushed (it batches every half second)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        page.goto(url)
        if page.locator(selector).count() >= count:
            return
        time.sleep(0.3)
    raise AssertionError(f"fewer than {count} rows of {selector} at {url}")


def test_the_whole_product_from_the_dashboard(chromium, ui_gateway, openai_mock):
    chromium.run(lambda browser: whole_product(open_page(browser, ui_gateway.url), ui_gateway,
                                               openai_mock))  # fmt: skip


def whole_product(page: Page, ui_gateway, openai_mock) -> None:
    # -- sign up and create a workspace ----------------------------------------------------
    page.goto("/ui")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    shoot(page, "01-login")
    page.get_by_role("link", name="Create an account").click()
    shoot(page, "02-signup")
    sign_up(page, "dana@example.com", "Dana Flow")
    expect(page.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
    shoot(page, "03-workspaces-empty")
    page.get_by_label("Workspace name").fill("Acme")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("heading", name="Acme", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Workspace Acme created")
    workspace = page.url.rstrip("/")
    shoot(page, "04-overview-new")

    # -- a provider credential (BYOK) pointing at the mock, tested --------------------------
    page.get_by_role("navigation", name="Workspace sections").get_by_role(
        "link", name="Providers"
    ).click()
    expect(page.get_by_text("No provider credentials yet")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("openai-mock")
    page.get_by_label("Provider").select_option("openai")
    page.get_by_label("API key").fill("sk-wrong-key-0000")
    page.get_by_label("Endpoint (optional)").fill("ftp://example.com")
    page.get_by_role("button", name="Save credential").click()
    # Refused next to the field that caused it; the secret is not echoed back.
    expect(page.locator("#f-api_base-error")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_value("")
    shoot(page, "05-providers-error")
    page.get_by_label("API key").fill("sk-test-openai")
    page.get_by_label("Endpoint (optional)").fill(f"{openai_mock.url}/v1")
    page.get_by_role("button", name="Save credential").click()
    expect(page.get_by_role("status")).to_contain_text("Connection OK")
    row = page.locator("tr[data-credential='openai-mock']")
    expect(row).to_contain_text("…enai")  # masked: only the last four characters
    expect(page.locator("body")).not_to_contain_text("sk-test-openai")
    row.get_by_role("button", name="Test connection").click()
    expect(page.locator("[data-test=connection-result]")).to_contain_text("Connection OK")
    shoot(page, "06-providers")

    # -- a workspace alias on that credential ------------------------------------------------
    page.goto(f"{workspace}/models")
    shoot(page, "07-models-empty")
    page.get_by_role("link", name="Add an alias").first.click()
    page.get_by_label("Alias", exact=True).fill("team-chat")
    page.locator("#f-deployments-0-credential_id").select_option(label="openai-mock")
    page.locator("#f-deployments-0-model").fill("gpt-4o-mini")
    shoot(page, "08-model-form")
    page.get_by_role("button", name="Add alias").click()
    expect(page.get_by_role("status")).to_contain_text("Alias team-chat saved")
    alias_card = page.locator("section[data-alias='team-chat']")
    expect(alias_card).to_contain_text("openai-mock")
    expect(alias_card).to_contain_text("closed")  # its circuit breaker, live

    # -- an API key: shown once, copied with the button --------------------------------------
    page.goto(f"{workspace}/keys")
    shoot(page, "09-keys-empty")
    page.get_by_label("Name", exact=True).fill("backend")
    page.get_by_label("Requests / minute").fill("100")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("shown only this once")
    shown = page.locator("[data-test=new-key]").inner_text().strip()
    assert shown.startswith("pk_live_")
    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown
    # The snippet is ready to paste: the key and an alias it may use (platform's sort first).
    expect(page.locator("#snippet")).to_contain_text(f'api_key="{shown}"')
    expect(page.locator("#snippet")).to_contain_text('model="gpt-4o-mini"')
    shoot(page, "10-key-created")
    page.get_by_role("link", name="back to keys").click()
    key_row = page.locator("tr[data-key='backend']")
    expect(key_row).to_contain_text("active")
    expect(key_row).to_contain_text("100 rpm")
    expect(page.locator("body")).not_to_contain_text(shown)  # never shown again

    # -- the key from the openai SDK -----------------------------------------------------------
    sdk = openai.OpenAI(base_url=f"{ui_gateway.url}/v1", api_key=copied, max_retries=0)
    reply = sdk.chat.completions.create(
        model="team-chat", messages=[{"role": "user", "content": "Hello from the SDK"}]
    )
    assert reply.choices[0].message.content
    streamed = sdk.chat.completions.create(
        model="team-chat", messages=[{"role": "user", "content": "Stream please"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)

    # -- the playground, as that key --------------------------------------------------------
    page.goto(f"{workspace}/playground")
    page.get_by_label("Model (alias)").select_option("team-chat")
    page.get_by_label("Message").fill("Say hello from the playground")
    page.get_by_role("button", name="Send", exact=True).click()
    meta = page.locator("[data-test=reply-meta]")
    expect(meta).to_contain_text("tokens", timeout=15_000)
    expect(meta).to_contain_text("1 attempt")
    expect(page.locator("#decision")).to_contain_text("gpt-4o-mini")
    assert page.locator(".msg-assistant .msg-body").inner_text().strip()
    shoot(page, "11-playground")

    # -- the requests in the logs, and one request's detail --------------------------------------
    wait_for_rows(page, f"{workspace}/logs", "tr[data-request]", 3)
    expect(page.locator("tr[data-request]").first).to_contain_text("team-chat")
    expect(page.locator("table.logs")).to_contain_text("backend")
    shoot(page, "12-logs")
    page.get_by_label("Fallback").select_option("yes")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No requests match")).to_be_visible()
    page.get_by_role("link", name="Clear").click()
    page.locator("tr[data-request] a").first.click()
    expect(page.get_by_role("heading", name="Routing decision")).to_be_visible()
    expect(page.locator("main")).to_contain_text("gpt-4o-mini")
    shoot(page, "13-log-detail")

    # -- the usage charts count them -------------------------------------------------------
    page.goto(f"{workspace}/usage?range=24h")
    expect(page.locator("[data-stat=requests]")).to_have_text("3")
    assert page.locator("svg.chart rect.bar").count() >= 1
    expect(page.locator("#b-key").locator("xpath=..")).to_contain_text("backend")
    shoot(page, "14-usage")
    with page.expect_download() as download:
        page.get_by_role("link", name="Usage CSV").click()
    assert download.value.suggested_filename.startswith("perpetuo-usage-")
    with page.expect_download() as download:
        page.get_by_role("link", name="Request log CSV").click()
    assert download.value.suggested_filename.startswith("perpetuo-logs-")

    # -- the remaining pages, photographed ------------------------------------------------------
    page.goto(workspace)
    expect(page.locator(".check.done")).to_have_count(4)
    shoot(page, "15-overview")
    page.goto(f"{workspace}/models")
    shoot(page, "16-models")
    page.goto(f"{workspace}/members")
    page.get_by_label("Email address").fill("new.person@example.com")
    page.get_by_role("button", name="Create invitation").click()
    expect(page.locator("[data-test=invite-link]")).to_contain_text("/ui/invite?token=pinv_")
    shoot(page, "17-members")
    for slug, name in (("limits", "18-limits"), ("audit", "19-audit"), ("settings", "20-settings")):
        page.goto(f"{workspace}/{slug}")
        shoot(page, name)
    expect(page.locator("body")).not_to_contain_text(copied)

    # -- revoke: the SDK call fails ---------------------------------------------------------
    page.goto(f"{workspace}/keys")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-key='backend']").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.locator("tr[data-key='backend']")).to_contain_text("revoked")
    shoot(page, "21-keys-revoked")
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk.chat.completions.create(
            model="team-chat", messages=[{"role": "user", "content": "still there?"}]
        )
    assert refused.value.code == "api_key_revoked"

    # -- sign out, and back in ---------------------------------------------------------------
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.goto(f"{workspace}/keys")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("Email address").fill("dana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/keys$"))
    page.context.close()
