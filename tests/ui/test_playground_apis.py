"""The playground in each client API, in a real browser: one conversation sent as Chat
Completions, then Responses, then Messages, each reply streamed in and labelled with its API
and lane; then the request log shows each request's API and filters on it, and the usage
page counts requests by API."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Browser, expect

from tests.ui.conftest import open_page, shoot, sign_up

# (API, what the reply line says): the session's gateway has one OpenAI deployment, which
# serves Responses as it is and Messages through the chat form.
APIS = (
    ("Chat Completions", "Chat Completions · "),
    ("Responses", "Responses (pass-through)"),
    ("Messages", "Messages (translated)"),
)


def test_one_playground_request_per_api(chromium, ui_gateway):
    chromium.run(lambda browser: playground_steps(browser, ui_gateway))


def playground_steps(browser: Browser, ui_gateway) -> None:
    page = open_page(browser, ui_gateway.url)
    sign_up(page, "pia@example.com", "Pia Polyglot")
    page.get_by_label("Workspace name").fill("Polyglot")
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("heading", name="Polyglot", exact=True)).to_be_visible()
    workspace = page.url.rstrip("/")
    page.goto(f"{workspace}/keys")
    page.get_by_label("Name", exact=True).fill("playground")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("alert")).to_contain_text("shown only this once")

    # -- the same conversation, one turn in each API ------------------------------------------
    page.goto(f"{workspace}/playground")
    page.get_by_label("Model (alias)").select_option("gpt-4o-mini")
    for turn, (api, label) in enumerate(APIS):
        page.get_by_label("API", exact=True).select_option(label=api)
        page.get_by_label("Message").fill(f"Hello in the {api} API")
        page.get_by_role("button", name="Send", exact=True).click()
        meta = page.locator("[data-test=reply-meta]").nth(turn)
        expect(meta).to_contain_text("tokens", timeout=15_000)
        expect(meta).to_contain_text(label)
        reply = page.locator(".msg-assistant .msg-body").nth(turn)
        expect(reply).to_contain_text(f"Hello in the {api} API")  # the mock echoes it
        expect(page.locator("#decision")).to_contain_text(label.removesuffix(" · "))
    expect(page.locator(".msg-error")).to_have_count(0)
    shoot(page, "22-playground-apis")

    # -- the log: each request's API, and the filter on it ------------------------------------
    deadline = time.monotonic() + 15
    while page.locator("tr[data-request]").count() < 3 and time.monotonic() < deadline:
        page.goto(f"{workspace}/logs")
        time.sleep(0.3)
    rows = page.locator("tr[data-request] td[data-api]")
    assert sorted(rows.all_inner_texts()) == ["Chat Completions", "Messages", "Responses"]
    page.get_by_label("API", exact=True).select_option(label="Messages")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"endpoint=messages"))
    expect(page.locator("tr[data-request]")).to_have_count(1)
    expect(page.locator("tr[data-request]")).to_contain_text("Messages")
    page.locator("tr[data-request] a").first.click()
    expect(page.locator("dd[data-api=messages]")).to_contain_text("Messages (streamed)")
    shoot(page, "23-logs-by-api")

    # -- usage by API -------------------------------------------------------------------------
    page.goto(f"{workspace}/usage?range=24h")
    by_api = page.locator("#b-endpoint").locator("xpath=..")
    for api, _ in APIS:
        expect(by_api).to_contain_text(api)
    page.context.close()
