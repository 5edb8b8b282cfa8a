"""Who may do what from the dashboard, route by route, enumerated from its router.

Every /ui route must be classified here (a new route fails the suite until it is). Viewers
cannot perform any mutation even when they replay a form with a valid CSRF token; each role
below a route's minimum gets 403 and each role from it upward succeeds; another
workspace's ids answer 404 without any of its data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, insert, select

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.store.schema import audit_log, memberships
from perpetuo.store.timeutil import utcnow
from perpetuo.ui.app import ROUTERS
from tests.support.admin_api import bearer
from tests.support.fake_stripe import FakeStripe
from tests.support.people import make_user
from tests.ui.billing_world import fresh_coupon
from tests.ui.world import ROLES, Tenant, World, counter, make_session, world

Fresh = Callable[[World, Tenant], Awaitable[dict[str, str]]]


async def _nothing(w: World, t: Tenant) -> dict[str, str]:
    return {}


async def _api(w: World, t: Tenant, path: str, body: dict[str, Any]) -> dict[str, Any]:
    owner = bearer(t.people["owner"].access_token)
    response = await w.api.http.post(
        f"/api/workspaces/{t.workspace_id}{path}", headers=owner, json=body
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def _key(w: World, t: Tenant) -> dict[str, str]:  # owned by the owner: members may not
    return {"key_id": (await _api(w, t, "/keys", {"name": f"k{next(counter)}"}))["id"]}


async def _credential(w: World, t: Tenant) -> dict[str, str]:
    body = {"name": "c", "provider_type": "openai", "api_key": "sk-fresh-1234"}
    return {"credential_id": (await _api(w, t, "/credentials", body))["id"]}


async def _model(w: World, t: Tenant) -> dict[str, str]:
    alias = f"fresh-{next(counter)}"
    deployments = [{"credential_id": t.ids["credential_id"], "model": "m"}]
    await _api(w, t, "/models", {"alias": alias, "deployments": deployments})
    return {"alias": alias}


async def _invite(w: World, t: Tenant) -> dict[str, str]:
    body = {"email": f"fresh{next(counter)}@example.com", "role": "viewer"}
    return {"invite_id": (await _api(w, t, "/invites", body))["id"]}


async def _member(w: World, t: Tenant) -> dict[str, str]:
    user_id = await make_user(w.api.plane, f"fresh{next(counter)}@example.com")
    async with w.api.plane.db.begin() as conn:
        await conn.execute(
            insert(memberships).values(
                workspace_id=t.workspace_id, user_id=user_id, role="viewer", created_at=utcnow()
            )
        )
    return {"user_id": user_id}


async def _session(w: World, t: Tenant) -> dict[str, str]:
    return {"session_id": await make_session(w.api, t)}


async def _workspace(w: World, t: Tenant) -> dict[str, str]:
    """A scratch workspace where every person of the tenant has the same role."""
    created = await w.api.http.post(
        "/api/workspaces", headers=bearer(t.people["owner"].access_token), json={"name": "scratch"}
    )
    workspace_id = created.json()["data"]["id"]
    async with w.api.plane.db.begin() as conn:
        for role in ("viewer", "member", "admin"):
            await conn.execute(
                insert(memberships).values(
                    workspace_id=workspace_id,
                    user_id=t.people[role].user_id,
                    role=role,
                    created_at=utcnow(),
                )
            )
    return {"workspace_id": workspace_id}


async def _sso_provider(w: World, t: Tenant) -> dict[str, str]:
    # The issuer is never reached but by a provider's test (which then shows it failed).
    body = {
        "name": f"{t.marker} SSO {next(counter)}",
        "issuer": "https://idp.invalid",
        "client_id": "c",
        "client_secret": "s",
    }
    return {"provider_id": (await _api(w, t, "/sso/providers", body))["id"]}


async def _team(w: World, t: Tenant) -> dict[str, str]:
    body = {"name": f"{t.marker} team {next(counter)}", "description": t.marker}
    return {"team_id": (await _api(w, t, "/teams", body))["id"]}


async def _team_member(w: World, t: Tenant) -> dict[str, str]:
    """A fresh member in a fresh team."""
    ids = await _team(w, t) | await _member(w, t)
    response = await w.api.http.put(
        f"/api/workspaces/{t.workspace_id}/teams/{ids['team_id']}/members/{ids['user_id']}",
        headers=bearer(t.people["owner"].access_token),
    )
    assert response.status_code == 200, response.text
    return ids


async def _alert_channel(w: World, t: Tenant) -> dict[str, str]:
    # The receiver never resolves: a test through it fails at once (and the page says so).
    body = {"name": f"{t.marker} hook", "kind": "webhook", "url": "https://unreachable.invalid/h"}
    return {"channel_id": (await _api(w, t, "/alert-channels", body))["id"]}


async def _alert_rule(w: World, t: Tenant) -> dict[str, str]:
    body = {"name": f"{t.marker} rule {next(counter)}", "kind": "key_expiring"}
    return {"rule_id": (await _api(w, t, "/alert-rules", body))["id"]}


@dataclass(frozen=True)
class Route:
    minimum: str
    body: Callable[[Tenant, dict[str, str]], dict[str, Any]] = lambda t, ids: {}
    fresh: Fresh = _nothing
    query: str = ""


def _deployment(t: Tenant, ids: dict[str, str]) -> dict[str, Any]:
    return {"deployments.0.credential_id": t.ids["credential_id"], "deployments.0.model": "m"}


MUTATIONS: dict[str, Route] = {
    "/members/{user_id}/role": Route("admin", lambda t, ids: {"role": "member"}, _member),
    "/members/{user_id}/remove": Route("admin", fresh=_member),
    "/invites": Route(
        "admin", lambda t, ids: {"email": f"n{next(counter)}@example.com", "role": "viewer"}
    ),
    "/teams": Route("admin", lambda t, ids: {"name": f"t{next(counter)}", "limits.rpm": "60"}),
    "/teams/{team_id}": Route(
        "admin", lambda t, ids: {"name": f"r{next(counter)}", "limits.budget_usd": "5"}, _team
    ),
    "/teams/{team_id}/delete": Route("admin", fresh=_team),
    "/teams/{team_id}/members": Route(
        "admin", lambda t, ids: {"user_id": t.people["member"].user_id}
    ),
    "/teams/{team_id}/members/{user_id}/remove": Route("admin", fresh=_team_member),
    "/invites/{invite_id}/revoke": Route("admin", fresh=_invite),
    "/providers": Route(
        "admin", lambda t, ids: {"name": "n", "provider_type": "openai", "api_key": "sk-new-1234"}
    ),
    "/providers/{credential_id}/test": Route("admin"),
    "/providers/{credential_id}/models": Route("admin"),
    "/providers/{credential_id}/aliases": Route(
        "admin", lambda t, ids: {"alias": f"found-{next(counter)}", "model": "m"}
    ),
    "/providers/{credential_id}/delete": Route("admin", fresh=_credential),
    "/models": Route(
        "admin", lambda t, ids: {"alias": f"new-{next(counter)}", **_deployment(t, ids)}
    ),
    "/models/update": Route(
        "admin", lambda t, ids: {"alias": ids["alias"], **_deployment(t, ids)}, _model
    ),
    "/models/delete": Route("admin", lambda t, ids: {"alias": ids["alias"]}, _model),
    "/keys": Route("member", lambda t, ids: {"name": "n", "scopes": "chat"}),
    "/keys/{key_id}": Route("admin", lambda t, ids: {"name": "renamed", "scopes": "chat"}, _key),
    "/keys/{key_id}/rotate": Route("admin", fresh=_key),
    "/keys/{key_id}/revoke": Route("admin", fresh=_key),
    "/limits/budget": Route("admin", lambda t, ids: {"budget_usd": "50"}),
    "/sessions/{session_id}/delete": Route("admin", fresh=_session),
    # Billing (on in these tests, each tenant subscribed; billing_world.py).
    "/billing/checkout": Route("admin", lambda t, ids: {"plan_id": "pro"}, _workspace),
    "/billing/plan": Route("admin", lambda t, ids: {"plan_id": "pro"}),
    "/billing/cancel": Route("admin"),
    "/billing/resume": Route("admin"),
    "/billing/portal": Route("admin"),
    "/billing/topup": Route("admin", lambda t, ids: {"preset_usd": "10"}),
    "/billing/trial": Route("admin", fresh=_workspace),
    "/billing/coupons": Route(
        "admin", lambda t, ids: {"code": ids.get("coupon_code", "NONE")}, fresh_coupon
    ),
    "/billing/auto-recharge": Route(
        "admin", lambda t, ids: {"enabled": "on", "threshold_usd": "5", "amount_usd": "10"}
    ),
    "/referrals/attach": Route(
        "admin", lambda t, ids: {"code": t.ids["referral_code"]}, _workspace
    ),
    "/sso": Route(
        "admin",
        lambda t, ids: {
            "name": f"n{next(counter)}",
            "issuer": "https://idp.invalid",
            "client_id": "c",
            "client_secret": "s",
        },
    ),
    "/sso/{provider_id}": Route("admin", lambda t, ids: {"name": "renamed"}, _sso_provider),
    "/sso/{provider_id}/test": Route("admin"),
    "/sso/{provider_id}/delete": Route("admin", fresh=_sso_provider),
    "/alerts/rules": Route(
        "admin",
        lambda t, ids: {"rule.name": f"r{next(counter)}", "rule.kind": "key_expiring"},
    ),
    "/alerts/rules/{rule_id}": Route(
        "admin", lambda t, ids: {"edit.name": "renamed", "edit.params": "days = 9"}, _alert_rule
    ),
    "/alerts/rules/{rule_id}/enabled": Route("admin", lambda t, ids: {"enabled": "off"}),
    "/alerts/rules/{rule_id}/delete": Route("admin", fresh=_alert_rule),
    "/alerts/channels": Route(
        "admin",
        lambda t, ids: {
            "channel.name": f"c{next(counter)}",
            "channel.kind": "slack",
            "channel.url": "https://hooks.slack.invalid/services/x",
        },
    ),
    "/alerts/channels/{channel_id}": Route("admin", lambda t, ids: {"edit.name": "renamed"}),
    "/alerts/channels/{channel_id}/enabled": Route("admin", lambda t, ids: {"enabled": "on"}),
    "/alerts/channels/{channel_id}/test": Route("admin"),
    "/alerts/channels/{channel_id}/delete": Route("admin", fresh=_alert_channel),
    "/settings": Route("admin", lambda t, ids: {"name": "renamed"}),
    "/settings/delete": Route("owner", lambda t, ids: {"confirm": "scratch"}, _workspace),
}
# Mutations no workspace role may make: only platform administrators.
PLATFORM_MUTATIONS: dict[str, Callable[[Tenant], dict[str, Any]]] = {
    "/limits/platform": lambda t: {"plan": "pro"},
    "/limits/credits": lambda t: {"amount_usd": "5", "note": t.marker},
    # Verified first, then withdrawn (the platform test posts these in this order).
    "/sso/domains": lambda t: {"domain": f"{t.marker}.example.com"},
    "/sso/domains/remove": lambda t: {"domain": f"{t.marker}.example.com"},
}
# The playground's JSON endpoint (CSRF token in a header): member and up, their own keys.
PLAYGROUND = "/playground/chat"
READS: dict[str, Route] = {
    "": Route("viewer"),
    "/members": Route("viewer"),
    "/teams": Route("viewer"),
    "/teams/{team_id}": Route("viewer"),
    "/providers": Route("viewer"),
    "/models": Route("viewer"),
    "/models/new": Route("admin"),
    "/models/edit": Route("admin", query="?alias={alias}"),
    "/keys": Route("viewer"),
    "/keys/{key_id}": Route("viewer"),
    "/playground": Route("member"),
    "/logs": Route("viewer"),
    "/logs/export.csv": Route("viewer"),
    "/logs/{request_id}": Route("viewer"),
    "/usage": Route("viewer"),
    "/usage/export.csv": Route("viewer"),
    "/sessions": Route("viewer"),
    "/sessions/export.json": Route("admin"),
    "/sessions/{session_id}": Route("admin"),
    "/limits": Route("viewer"),
    "/billing": Route("viewer"),
    "/referrals": Route("viewer"),
    "/alerts": Route("viewer"),
    "/audit": Route("admin"),
    "/sso": Route("admin"),
    "/settings": Route("viewer"),
}
# Routes outside any workspace: signing in and out, one's own workspaces, invitations, files.
OUTSIDE = {
    ("GET", "/ui"),
    ("GET", "/ui/"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("GET", "/ui/signup"),
    ("POST", "/ui/signup"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/invite"),
    ("POST", "/ui/invites/accept"),
    ("GET", "/ui/workspaces"),
    ("POST", "/ui/workspaces"),
    ("GET", "/ui/static/{name}"),
    # Signing in through an identity provider (tests/ui/test_sso_oidc.py).
    ("GET", "/ui/sso/{key}/start"),
    ("GET", "/ui/sso/{key}/callback"),
    ("POST", "/ui/sso/find"),
    # One's own account, and the pages mailed links lead to (tests/control/mail/).
    ("GET", "/ui/account"),
    ("POST", "/ui/account/mail"),
    ("POST", "/ui/verify-email/resend"),
    ("GET", "/ui/verify-email"),
    ("GET", "/ui/forgot-password"),
    ("POST", "/ui/forgot-password"),
    ("GET", "/ui/reset-password"),
    ("POST", "/ui/reset-password"),
    ("GET", "/ui/unsubscribe"),
    ("POST", "/ui/unsubscribe"),
    # Public pages, each off until the operator turns it on (test_public_pages.py).
    ("GET", "/ui/home"),
    ("GET", "/ui/pricing"),
    ("GET", "/ui/catalog"),
    ("GET", "/ui/rankings"),
}
WS = "/ui/w/{workspace_id}"


def ui_routes(w: World) -> set[tuple[str, str]]:
    """Every route of the dashboard: its page routers' and the application's own."""
    app = w.api.app.ui_app().app
    routes = [r for router in ROUTERS for r in router.routes] + list(app.routes)
    return {(m, r.path) for r in routes if isinstance(r, APIRoute) for m in r.methods}


def path(template: str, t: Tenant, ids: dict[str, str], workspace_id: str | None = None) -> str:
    out = (WS + template).replace("{workspace_id}", workspace_id or t.workspace_id)
    for name, value in ids.items():
        out = out.replace("{" + name + "}", value)
    assert "{" not in out, out
    return out


@asynccontextmanager
async def routes_world(tmp_path: Path) -> AsyncIterator[World]:
    """Two tenants holding one of everything a dashboard route names by id, billing on (so
    its pages are there too). Needs PERPETUO_ENCRYPTION_KEYS set."""
    stripe = FakeStripe().start()
    try:
        async with world(tmp_path, stripe) as made:
            for tenant in (made.a, made.b):
                tenant.ids |= await _sso_provider(made, tenant)
                tenant.ids |= await _team(made, tenant)
                tenant.ids |= await _alert_channel(made, tenant)
                tenant.ids |= await _alert_rule(made, tenant)
            yield made
    finally:
        stripe.stop()


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with routes_world(tmp_path) as made:
        yield made


async def test_every_route_is_classified(w):
    classified = (
        {("POST", WS + p) for p in (*MUTATIONS, *PLATFORM_MUTATIONS, PLAYGROUND)}
        | {("GET", WS + p) for p in READS}
        | OUTSIDE
    )
    routes = ui_routes(w)
    assert routes - classified == set(), "classify these /ui routes in tests/ui/test_access.py"
    assert classified - routes == set()


async def _audit_count(w: World, user_id: str) -> int:
    async with w.api.plane.db.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count()).select_from(audit_log).where(audit_log.c.actor_id == user_id)
            )
        )


async def test_a_viewer_cannot_mutate_even_replaying_a_valid_form(w):
    a = w.a
    viewer = a.people["viewer"]
    for template, route in MUTATIONS.items():
        ids = {**a.ids, **await route.fresh(w, a)}
        workspace_id = ids.pop("workspace_id", None)
        response = await viewer.post(path(template, a, ids, workspace_id), route.body(a, ids))
        assert response.status_code == 403, (template, response.status_code, response.text[:300])
    for template, body in PLATFORM_MUTATIONS.items():
        response = await viewer.post(path(template, a, a.ids), body(a))
        assert response.status_code == 403, template
    chat = await viewer.http.post(
        path(PLAYGROUND, a, a.ids),
        json={"key_id": a.ids["key_id"], "model": a.ids["alias"], "messages": "x"},
        headers={**viewer.headers(), "x-csrf-token": viewer.csrf, "accept": "application/json"},
    )
    assert chat.status_code == 403
    assert await _audit_count(w, viewer.user_id) == 0  # nothing was changed in their name


async def test_each_role_from_the_minimum_up_may_mutate(w):
    a = w.a
    for template, route in MUTATIONS.items():
        for role in ROLES:
            ids = {**a.ids, **await route.fresh(w, a)}
            workspace_id = ids.pop("workspace_id", None)
            person = a.people[role]
            response = await person.post(path(template, a, ids, workspace_id), route.body(a, ids))
            allowed = ROLES.index(role) >= ROLES.index(route.minimum)
            expected = (200, 201, 303) if allowed else (403,)
            assert response.status_code in expected, (role, template, response.text[:400])


async def test_platform_mutations_need_a_platform_administrator(w):
    a = w.a
    for template, body in PLATFORM_MUTATIONS.items():
        for role in ROLES:
            response = await a.people[role].post(path(template, a, a.ids), body(a))
            assert response.status_code == 403, (role, template)
        response = await w.superadmin.post(path(template, a, a.ids), body(a))
        assert response.status_code == 303, (template, response.text[:400])


async def test_the_playground_needs_a_member_acting_with_their_own_key(w):
    a = w.a

    async def chat(role: str, key_id: str) -> int:
        person = a.people[role]
        response = await person.http.post(
            path(PLAYGROUND, a, a.ids),
            json={"key_id": key_id, "model": a.ids["alias"], "messages": "not a list"},
            headers={**person.headers(), "x-csrf-token": person.csrf},
        )
        return response.status_code

    owners_key = (await _key(w, a))["key_id"]
    assert await chat("viewer", a.ids["key_id"]) == 403
    assert await chat("member", owners_key) == 403  # someone else's key
    # Allowed: the request reaches the data-plane's validation (a bad `messages`).
    assert await chat("member", a.ids["key_id"]) == 400
    assert await chat("admin", owners_key) == 400


async def test_another_workspaces_ids_answer_404_without_its_data(w):
    a, b = w.a, w.b
    leaks = (
        b.marker,
        b.ids["key_id"],
        b.ids["credential_id"],
        b.ids["invite_id"],
        b.ids["session_id"],
        b.ids["provider_id"],
        b.ids["team_id"],
        b.ids["channel_id"],
        b.ids["rule_id"],
    )
    for role in ROLES:
        person = a.people[role]
        for template, route in READS.items():
            url = path(template + route.query, b, b.ids)
            response = await person.get(url)
            assert response.status_code == 404, (role, url, response.status_code)
            assert not any(leak in response.text for leak in leaks), (role, url)
            if "{" in template or route.query:  # A's workspace with B's resource ids
                response = await person.get(path(template + route.query, a, b.ids))
                assert response.status_code in (403, 404), (role, template)
                assert not any(leak in response.text for leak in leaks), (role, template)
        for template, route in {**MUTATIONS, **{p: Route("x") for p in PLATFORM_MUTATIONS}}.items():
            ids = {**b.ids, "workspace_id": b.workspace_id}
            response = await person.post(
                path(template, b, ids), route.body(a, {**a.ids, "alias": b.ids["alias"]})
            )
            assert response.status_code == 404, (role, template, response.status_code)
            assert not any(leak in response.text for leak in leaks), (role, template)
        chat = await person.http.post(
            path(PLAYGROUND, b, b.ids),
            json={"key_id": b.ids["key_id"], "model": "x", "messages": []},
            headers={**person.headers(), "x-csrf-token": person.csrf},
        )
        assert chat.status_code == 404 and b.marker not in chat.text


async def test_lists_show_only_the_workspaces_own_records(w):
    a, b = w.a, w.b
    owner = a.people["owner"]
    for template in (
        "/keys",
        "/providers",
        "/models",
        "/members",
        "/teams",
        "/alerts",
        "/logs",
        "/audit",
        "/usage",
        "/sessions",
        "/sessions/export.json",
    ):
        response = await owner.get(path(template, a, a.ids))
        assert response.status_code == 200, template
        assert b.marker not in response.text, template
    logs = await owner.get(path("/logs", a, a.ids))
    assert a.ids["request_id"] in logs.text
    export = await owner.get(path("/logs/export.csv", a, a.ids))
    assert a.ids["request_id"] in export.text and b.ids["request_id"] not in export.text
