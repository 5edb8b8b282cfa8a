"""Model discovery from the dashboard, in a real browser: a stored credential's models listed
from the provider (the OpenAI mock), with catalog prices and context windows, an alias created
in one click, then shown as existing; the same list from the admin API, and its 502 for a key
the provider refuses."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.ui.conftest import PASSWORD, open_page, shoot, sign_up

EMAIL = "finder@example.com"


def test_a_credentials_models_become_aliases(chromium, ui_gateway, openai_mock):
    workspace, credential = chromium.run(
        lambda browser: discover(open_page(browser, ui_gateway.url), openai_mock)
    )
    tokens = httpx.post(
        f"{ui_gateway.url}/api/auth/login",
        json={"email": EMAIL, "password": PASSWORD},
        timeout=30,
    ).json()["data"]
    headers = {"authorization": f"Bearer {tokens['access_token']}"}
    base = f"{ui_gateway.url}/api/workspaces/{workspace}/credentials"
    listed = httpx.post(f"{base}/{credential}/models", headers=headers, timeout=30)
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == [
        {
            "alias": "gpt-4o-mini",
            "provider": "openai-found",
            "model": "gpt-4o-mini",
            "endpoints": [],
            "input_price": 0.15,
            "output_price": 0.6,
            "max_output_tokens": 16384,
            "context_window": 128000,
        }
    ]
    bad = httpx.post(
        base,
        headers=headers,
        json={
            "name": "refused",
            "provider_type": "openai",
            "api_key": "sk-refused-key-9999",
            "api_base": f"{openai_mock.url}/v1",
        },
        timeout=30,
    ).json()["data"]
    refused = httpx.post(f"{base}/{bad['id']}/models", headers=headers, timeout=30)
    assert refused.status_code == 502
    error = refused.json()["error"]
    assert error["code"] == "upstream_error" and "The provider answered 401" in error["message"]
    assert "sk-refused-key-9999" not in refused.text


def discover(page: Page, openai_mock) -> tuple[str, str]:
    sign_up(page, EMAIL, "Finn Der")
    page.get_by_label("Workspace name").fill("Finder")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("heading", name="Finder", exact=True)).to_be_visible()
    workspace_url = page.url.rstrip("/")
    workspace = re.search(r"/ui/w/([^/]+)", workspace_url).group(1)  # type: ignore[union-attr]
    page.goto(f"{workspace_url}/providers")
    page.get_by_label("Name", exact=True).fill("openai-found")
    page.get_by_label("Provider").select_option("openai")
    page.get_by_label("API key").fill("sk-test-openai")
    page.get_by_label("Endpoint (optional)").fill(f"{openai_mock.url}/v1")
    page.get_by_role("button", name="Save credential").click()
    row = page.locator("tr[data-credential='openai-found']")
    credential = row.locator(".cell-sub").inner_text().strip()
    row.get_by_role("button", name="Models").click()

    found = page.locator("[data-test=discovered-models]")
    model_row = found.locator("tr[data-model='gpt-4o-mini']")
    expect(model_row).to_contain_text("$0.15")
    expect(model_row).to_contain_text("$0.6")
    expect(model_row).to_contain_text("128,000")
    expect(found).to_contain_text("1 of 1 models")
    shoot(page, "providers-discovered-models")
    expect(model_row.get_by_label("Alias for gpt-4o-mini")).to_have_value("gpt-4o-mini")
    model_row.get_by_role("button", name="Create alias").click()
    expect(page.locator(".notice.success")).to_contain_text(
        "Alias gpt-4o-mini created for gpt-4o-mini"
    )
    expect(page.locator("section[data-alias='gpt-4o-mini']").first).to_contain_text("openai-found")

    page.goto(f"{workspace_url}/providers")
    page.locator("tr[data-credential='openai-found']").get_by_role("button", name="Models").click()
    found = page.locator("[data-test=discovered-models]")
    expect(found.locator("tr[data-model='gpt-4o-mini']")).to_contain_text(
        "alias gpt-4o-mini exists"
    )
    found.get_by_label("Only models containing").fill("claude")
    found.get_by_role("button", name="Filter").click()
    expect(page.locator("[data-test=discovered-models]")).to_contain_text("0 of 1 models")
    return workspace, credential
