"""Steps of the paid-service browser tests (the `shop` gateway of conftest.py): a verified
customer with a workspace, mail read from the SMTP server, balances read through the API."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email.message import EmailMessage

import httpx
from playwright.sync_api import Page, expect

from tests.support.smtp import text_of
from tests.ui.conftest import Shop, sign_up


def mails_to(shop: Shop, address: str, template_words: str = "") -> list[EmailMessage]:
    return [
        m
        for m in list(shop.smtp.inbox.messages)
        if m["To"] == address and template_words.lower() in str(m["Subject"]).lower()
    ]


def wait_for_mail(shop: Shop, address: str, words: str, count: int = 1) -> list[EmailMessage]:
    deadline = time.monotonic() + 30  # webhooks and passes on a busy machine
    while time.monotonic() < deadline:
        found = mails_to(shop, address, words)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    subjects = [str(m["Subject"]) for m in shop.smtp.inbox.messages if m["To"] == address]
    raise AssertionError(f"no mail about {words!r} to {address}; got {subjects}")


def link_in(message: EmailMessage, base_url: str, path: str) -> str:
    found = re.search(re.escape(base_url + path) + r"\?\S+", text_of(message))
    assert found, text_of(message)
    return found.group(0)


def verified_customer(page: Page, shop: Shop, email: str, workspace: str) -> str:
    """Sign up, follow the mailed verification link, create a workspace; its dashboard URL."""
    sign_up(page, email, "Pat Payer")
    [mail] = wait_for_mail(shop, email, "confirm")
    page.goto(link_in(mail, shop.url, "/ui/verify-email"))
    expect(page.locator("[data-verified]")).to_be_visible()
    page.goto("/ui/workspaces")
    page.get_by_label("Workspace name").fill(workspace)
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("heading", name=workspace, exact=True)).to_be_visible()
    return page.url.rstrip("/")


def _with_key(shop: Shop, path: str, key: str) -> dict[str, float]:
    answer = httpx.get(f"{shop.url}{path}", headers={"authorization": f"Bearer {key}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def credits(shop: Shop, key: str) -> dict[str, float]:
    """The workspace's credit as its key reads it (`GET /v1/credits`)."""
    return _with_key(shop, "/v1/credits", key)


def key_usage(shop: Shop, key: str) -> float:
    """What the key spent, all time (`GET /v1/key`; it has no budget period)."""
    return _with_key(shop, "/v1/key", key)["usage"]


def wait_for_credits(
    shop: Shop, key: str, test: Callable[[dict[str, float]], bool], what: str
) -> dict[str, float]:
    """Poll /v1/credits until `test` holds (webhooks and passes are asynchronous)."""
    deadline = time.monotonic() + 30  # webhooks and passes on a busy machine
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = credits(shop, key)
        if test(seen):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"{what}: the credit stayed {seen}")
