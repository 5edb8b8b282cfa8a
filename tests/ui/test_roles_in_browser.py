"""Roles as people meet them in the browser: a viewer sees no control that changes anything,
and replaying a member's captured form with the viewer's own session and CSRF token is
refused. Also: the main actions can be reached and used with the keyboard alone."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.ui.conftest import open_page, shoot, sign_up

VIEWER_PAGES = ("", "models", "providers", "keys", "logs", "usage", "limits", "members", "settings")


def _invite(owner: Page, workspace: str, email: str, role: str) -> str:
    owner.goto(f"{workspace}/members")
    owner.get_by_label("Email address").fill(email)
    owner.locator("#f-role").select_option(role)
    owner.get_by_role("button", name="Create invitation").click()
    return owner.locator("[data-test=invite-link]").inner_text().strip()


def _mutating_forms(page: Page, own_user_id: str) -> list[str]:
    """POST forms other than signing out and leaving (which any member may do)."""
    actions = page.eval_on_selector_all(
        "form", "forms => forms.filter(f => f.method === 'post').map(f => f.action)"
    )
    allowed = ("/ui/logout", f"/members/{own_user_id}/remove")
    return [a for a in actions if not a.endswith(allowed)]


def test_a_viewer_sees_no_mutation_controls_and_replays_are_refused(chromium, ui_gateway):
    chromium.run(lambda browser: viewer_steps(browser, ui_gateway))


def viewer_steps(browser: Browser, ui_gateway) -> None:
    owner = open_page(browser, ui_gateway.url)
    sign_up(owner, "olga@example.com", "Olga Owner")
    owner.get_by_label("Workspace name").fill("Viewers welcome")
    owner.get_by_role("button", name="Create workspace").click()
    workspace = owner.url.rstrip("/")
    member_link = _invite(owner, workspace, "mo@example.com", "member")
    viewer_link = _invite(owner, workspace, "vic@example.com", "viewer")

    member = open_page(browser, ui_gateway.url)
    sign_up(member, "mo@example.com", "Mo Member", invite_url=member_link)
    expect(member.get_by_role("heading", name="Viewers welcome", exact=True)).to_be_visible()
    member.goto(f"{workspace}/keys")
    captured = []
    member.on(
        "request",
        lambda r: captured.append(r) if r.method == "POST" and r.url.endswith("/keys") else None,
    )
    member.get_by_label("Name", exact=True).fill("member-key")
    member.get_by_role("button", name="Create key").click()
    expect(member.get_by_role("alert")).to_contain_text("shown only this once")
    assert len(captured) == 1

    viewer = open_page(browser, ui_gateway.url)
    sign_up(viewer, "vic@example.com", "Vic Viewer", invite_url=viewer_link)
    expect(viewer.locator(".whoami")).to_contain_text("viewer")
    nav = viewer.get_by_role("navigation", name="Workspace sections")
    expect(nav.get_by_role("link", name="Playground")).to_have_count(0)
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    viewer.goto(f"{workspace}/members")
    viewer_id = re.search(r"/members/(usr_\w+)/remove", viewer.content())[1]
    for slug in VIEWER_PAGES:
        viewer.goto(f"{workspace}/{slug}".rstrip("/"))
        assert _mutating_forms(viewer, viewer_id) == [], slug
        for label in ("Create key", "Revoke", "Rotate", "Delete", "Save credential", "Edit"):
            expect(viewer.get_by_role("button", name=label, exact=True)).to_have_count(0)
    viewer.goto(f"{workspace}/keys")
    expect(viewer.locator("tr[data-key='member-key']")).to_be_visible()
    shoot(viewer, "30-viewer-keys")
    for slug in ("playground", "audit", "models/new"):
        response = viewer.goto(f"{workspace}/{slug}")
        assert response.status == 403, slug
    shoot(viewer, "31-viewer-refused")

    # Replay the member's captured form as the viewer, with the viewer's own valid token.
    cookie = next(c for c in viewer.context.cookies() if c["name"] == "perpetuo_session")
    viewer.goto(f"{workspace}/keys")
    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    form = dict(pair.split("=", 1) for pair in captured[0].post_data.split("&") if "=" in pair)
    form["csrf_token"] = token
    replay = httpx.post(
        captured[0].url,
        data={k: httpx.QueryParams(f"v={v}")["v"] for k, v in form.items()},
        headers={"cookie": f"perpetuo_session={cookie['value']}", "origin": ui_gateway.url},
    )
    assert replay.status_code == 403, replay.text[:300]
    viewer.reload()
    expect(viewer.locator("tr[data-key]")).to_have_count(1)  # still only the member's key
    for page in (owner, member, viewer):
        page.context.close()


def _tab_to(page: Page, name: str, limit: int = 120) -> None:
    """Press Tab until the focused element's label or text is `name`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const e = document.activeElement;
                       const label = e.labels && e.labels[0] ? e.labels[0].textContent : '';
                       return (label || e.textContent || e.value || '').trim(); }"""
        )
        if focused == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


def _outline(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.activeElement).outlineStyle")


def test_the_main_actions_work_from_the_keyboard(chromium, ui_gateway):
    chromium.run(lambda browser: keyboard_steps(open_page(browser, ui_gateway.url)))


def keyboard_steps(page: Page) -> None:
    page.goto("/ui/signup")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    _tab_to(page, "Your name")
    page.keyboard.type("Kim Keys")
    _tab_to(page, "Email address")
    page.keyboard.type("kim@example.com")
    _tab_to(page, "Password")
    page.keyboard.type("Correct-horse-42")
    _tab_to(page, "Create account")
    assert _outline(page) != "none"  # focus is visible
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()

    _tab_to(page, "Workspace name")
    page.keyboard.type("Keyboard only")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Keyboard only", exact=True)).to_be_visible()

    page.keyboard.press("Tab")  # the skip link, then straight to the content
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    _tab_to(page, "API keys")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/keys$"))
    _tab_to(page, "Name")
    page.keyboard.type("typed-key")
    _tab_to(page, "Create key")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("shown only this once")
    _tab_to(page, "Copy key")
    assert _outline(page) != "none"
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name=re.compile("Copied|Press Ctrl\\+C"))).to_be_visible()
    _tab_to(page, "I have copied it — back to keys")
    page.keyboard.press("Enter")
    expect(page.locator("tr[data-key='typed-key']")).to_be_visible()
    page.context.close()
