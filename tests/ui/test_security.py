"""The dashboard's browser protections: CSRF tokens and same-origin checks on every POST,
security headers on every response, cookie flags, sessions that end at once."""

from __future__ import annotations

import re

import httpx
import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.control import sessions
from tests.support.people import PASSWORD
from tests.ui.test_access import MUTATIONS, PLATFORM_MUTATIONS, path, routes_world
from tests.ui.world import ORIGIN, csrf_of

SESSION_POSTS = ["/ui/logout", "/ui/workspaces", "/ui/invites/accept"]
PRESESSION_POSTS = ["/ui/login", "/ui/signup"]


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with routes_world(tmp_path) as made:  # every id the mutations name
        yield made


def _every_post(w) -> list[str]:
    a = w.a
    templates = [*MUTATIONS, *PLATFORM_MUTATIONS]
    return [*SESSION_POSTS, *(path(t, a, a.ids) for t in templates)]


async def test_posts_without_the_right_token_or_origin_are_refused(w):
    owner = w.a.people["owner"]
    for url in _every_post(w):
        missing = await owner.post(url, {"name": "x"}, token=False)
        forged = await owner.post(url, {"name": "x", "csrf_token": "forged"}, token=False)
        other_site = await owner.post(url, {"name": "x"}, origin="https://evil.example")
        no_origin = await owner.post(url, {"name": "x"}, origin=None)
        for response in (missing, forged, other_site, no_origin):
            assert response.status_code == 403, (url, response.status_code)
            assert "could not be verified" in response.text
    # Another person's token is no good either: tokens are bound to the session.
    other = w.a.people["admin"]
    response = await owner.post(path("/settings", w.a, {}), {"csrf_token": other.csrf}, token=False)
    assert response.status_code == 403
    # The referer stands in for a missing Origin header (some browsers omit it).
    ok = await owner.post(
        path("/limits/budget", w.a, {}),
        {"budget_usd": "10"},
        origin=None,
        headers={"referer": f"{ORIGIN}/ui/w/{w.a.workspace_id}/limits"},
    )
    assert ok.status_code == 303


async def test_the_playground_endpoint_needs_its_header_token(w):
    a = w.a
    member = a.people["member"]
    url = path("/playground/chat", a, a.ids)
    body = {"key_id": a.ids["key_id"], "model": a.ids["alias"], "messages": "x"}
    assert (await member.http.post(url, json=body, headers=member.headers())).status_code == 403
    forged = {**member.headers(), "x-csrf-token": "forged"}
    assert (await member.http.post(url, json=body, headers=forged)).status_code == 403
    elsewhere = {**member.headers("https://evil.example"), "x-csrf-token": member.csrf}
    assert (await member.http.post(url, json=body, headers=elsewhere)).status_code == 403


async def test_sign_in_forms_need_their_double_submit_token(w):
    http = w.api.client("127.0.0.2")
    page = await http.get("/ui/login")
    token = csrf_of(page.text)
    assert "perpetuo_presession" in page.headers["set-cookie"]
    form = {"email": "aaa-owner@example.com", "password": PASSWORD}
    for url in PRESESSION_POSTS:
        refused = await http.post(url, data=form, headers={"origin": ORIGIN})
        assert refused.status_code == 403, url
        cross = await http.post(
            url, data={**form, "csrf_token": token}, headers={"origin": "https://evil.example"}
        )
        assert cross.status_code == 403, url
    signed_in = await http.post(
        "/ui/login", data={**form, "csrf_token": token}, headers={"origin": ORIGIN}
    )
    assert signed_in.status_code == 303, signed_in.text[:300]


async def test_security_headers_on_every_kind_of_response(w):
    owner = w.a.people["owner"]
    css = (await owner.get("/ui/workspaces")).text
    asset = re.search(r'href="(/ui/static/app\.css\?v=[^"]+)"', css)[1]
    responses = {
        "page": await owner.get(path("/keys", w.a, {})),
        "redirect": await w.api.client("127.0.0.3").get("/ui"),
        "not found": await owner.get("/ui/w/ws_nope/keys"),
        "no route": await owner.get("/ui/nothing-here"),
        "refused": await owner.post(path("/settings", w.a, {}), {}, token=False),
        "file": await owner.get(asset),
        "csv": await owner.get(path("/logs/export.csv", w.a, {})),
    }
    for name, response in responses.items():
        headers = response.headers
        policy = headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, name
        assert "'unsafe-inline'" not in policy, name
        assert headers.get("x-content-type-options") == "nosniff", name
        assert headers.get("x-frame-options") == "DENY", name
        assert headers.get("referrer-policy") == "same-origin", name
    assert responses["page"].headers["cache-control"] == "no-store"
    assert "immutable" in responses["file"].headers["cache-control"]
    assert responses["not found"].status_code == 404 and responses["no route"].status_code == 404
    # No inline script or style anywhere: the policy forbids them.
    for name in ("page", "not found"):
        html = responses[name].text
        assert "<script>" not in html and " style=" not in html and "<style" not in html, name


async def test_session_cookie_flags_follow_the_scheme(w):
    for base, secure in (("http://gateway", False), ("https://gateway", True)):
        transport = httpx.ASGITransport(app=w.api.app, client=("127.0.0.4", 1))
        async with httpx.AsyncClient(transport=transport, base_url=base) as http:
            token = csrf_of((await http.get("/ui/login")).text)
            response = await http.post(
                "/ui/login",
                data={"email": "bbb-viewer@example.com", "password": PASSWORD, "csrf_token": token},
                headers={"origin": base},
            )
            assert response.status_code == 303, response.text[:300]
            cookie = next(
                c for c in response.headers.get_list("set-cookie") if "perpetuo_session=" in c
            )
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
            assert ("Secure" in cookie) is secure, cookie


async def test_a_revoked_session_stops_at_once_and_logout_revokes(w):
    owner = w.a.people["owner"]
    keys = path("/keys", w.a, {})
    assert (await owner.get(keys)).status_code == 200
    session_id = sessions.session_id_of(owner.session)
    async with w.api.plane.db.begin() as conn:
        await sessions.revoke(conn, session_id)
    gone = await owner.get(keys)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/login?next=")
    admin = w.a.people["admin"]
    assert (await admin.post("/ui/logout")).status_code == 303
    assert (await admin.get(keys)).status_code == 303  # the old cookie no longer works
    replayed = await admin.post(path("/settings", w.a, {}), {"name": "after logout"})
    assert replayed.status_code == 303 and "/ui/login" in replayed.headers["location"]


async def test_sign_in_never_redirects_off_site(w):
    http = w.api.client("127.0.0.5")
    token = csrf_of((await http.get("/ui/login")).text)
    for target in ("https://evil.example/", "//evil.example", "/ui//evil.example", "/api/x"):
        response = await http.post(
            "/ui/login",
            data={
                "email": "aaa-member@example.com",
                "password": PASSWORD,
                "csrf_token": token,
                "next": target,
            },
            headers={"origin": ORIGIN},
        )
        assert response.headers["location"] == "/ui", target


async def test_wrong_password_is_shown_next_to_the_form(w):
    http = w.api.client("127.0.0.6")
    token = csrf_of((await http.get("/ui/login")).text)
    response = await http.post(
        "/ui/login",
        data={"email": "aaa-member@example.com", "password": "nope", "csrf_token": token},
        headers={"origin": ORIGIN},
    )
    assert response.status_code == 401
    assert (
        'data-error="form"' in response.text
        and "Incorrect email address or password" in response.text
    )
    assert 'value="aaa-member@example.com"' in response.text and "nope" not in response.text
