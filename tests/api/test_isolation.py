"""Tenant isolation, route by route, from the admin API's own OpenAPI schema.

Every route must be classified here (a new route fails the suite until it is). For every
workspace route and every role, the test calls it against another workspace's ids and
expects 404 with none of that workspace's data in the answer; then within the caller's own
workspace it expects 403 below the route's minimum role and success from it upward. Each
tenant also has a member holding a custom role (a member's permissions plus the audit log's),
refused and allowed exactly as its permissions say.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.control.permissions import BUILT_IN
from perpetuo.control.session_history import StoredMessage
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from tests.api import billing_isolation as billing
from tests.support.admin_api import MASTER, admin_api, bearer
from tests.support.fake_stripe import FakeStripe
from tests.support.people import make_user, make_workspace, sign_in

ROLES = ("viewer", "member", "admin", "owner")
CUSTOM = "custom"  # a custom role of each tenant's workspace (control/roles.py)
CUSTOM_PERMISSIONS = sorted(BUILT_IN["member"] | {"audit.read"})
CUSTOM_ALSO = {("GET", "/api/workspaces/{workspace_id}/audit")}  # beyond a member's routes
CALLERS = (*ROLES, CUSTOM)
_counter = itertools.count()


@dataclass
class Tenant:
    workspace_id: str
    tokens: dict[str, str]  # role -> access token of a member with that role
    owner_id: str
    marker: str  # a string every resource of this tenant carries, to detect leaks
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    api: Any
    a: Tenant
    b: Tenant

    async def call(self, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.api.http.request(method, path, headers=bearer(token), json=body)


async def _tenant(api: Any, name: str) -> Tenant:
    plane = api.plane
    users = {role: await make_user(plane, f"{name}-{role}@example.com") for role in ROLES}
    workspace_id = await make_workspace(plane, {uid: role for role, uid in users.items()})
    tokens = {role: (await sign_in(plane, uid)).access_token for role, uid in users.items()}
    tenant = Tenant(workspace_id, tokens, users["owner"], f"marker-{name}")
    await _fill(api, tenant)
    await _custom_member(api, tenant)
    return tenant


async def _custom_member(api: Any, t: Tenant) -> None:
    """The custom role, made and given through the API as an owner would."""
    owner = bearer(t.tokens["owner"])
    base = f"/api/workspaces/{t.workspace_id}"
    role = await api.http.post(
        f"{base}/roles",
        headers=owner,
        json={"name": CUSTOM, "description": t.marker, "permissions": CUSTOM_PERMISSIONS},
    )
    assert role.status_code == 201, role.text
    user_id = await make_user(api.plane, f"{t.marker}-custom@example.com")
    await _add_member(api.plane, t.workspace_id, user_id, "viewer")
    given = await api.http.patch(f"{base}/members/{user_id}", headers=owner, json={"role": CUSTOM})
    assert given.status_code == 200 and given.json()["data"]["role"] == CUSTOM, given.text
    t.tokens[CUSTOM] = (await sign_in(api.plane, user_id)).access_token
    t.ids["role_id"] = role.json()["data"]["id"]


async def _add_member(plane: Any, workspace_id: str, user_id: str, role: str) -> None:
    from sqlalchemy import insert

    from perpetuo.store.schema import memberships
    from perpetuo.store.timeutil import utcnow

    async with plane.db.begin() as conn:
        await conn.execute(
            insert(memberships).values(
                workspace_id=workspace_id, user_id=user_id, role=role, created_at=utcnow()
            )
        )


async def _fill(api: Any, t: Tenant) -> None:
    """One of everything the tenant can hold, each carrying the tenant's marker."""
    owner = bearer(t.tokens["owner"])
    base = f"/api/workspaces/{t.workspace_id}"
    key = await api.http.post(f"{base}/keys", headers=owner, json={"name": t.marker})
    cred = await api.http.post(
        f"{base}/credentials",
        headers=owner,
        json={"name": t.marker, "provider_type": "openai", "api_key": f"sk-{t.marker}-secret"},
    )
    model = await api.http.post(
        f"{base}/models",
        headers=owner,
        json={
            "alias": f"alias-{t.marker}",
            "description": t.marker,
            "deployments": [{"credential_id": cred.json()["data"]["id"], "model": "gpt-4o-mini"}],
        },
    )
    invite = await api.http.post(
        f"{base}/invites",
        headers=owner,
        json={"email": f"{t.marker}@example.com", "role": "viewer"},
    )
    channel = await api.http.post(
        f"{base}/alert-channels",
        headers=owner,
        json={"name": t.marker, "kind": "webhook", "url": f"https://hooks.example.com/{t.marker}"},
    )
    rule = await api.http.post(
        f"{base}/alert-rules",
        headers=owner,
        json={
            "name": t.marker,
            "kind": "key_expiring",
            "channel_ids": [channel.json()["data"]["id"]],
        },
    )
    provider = await api.http.post(
        f"{base}/sso/providers",
        headers=owner,
        json=_provider_body(t.marker),
    )
    domain = f"{t.marker}.example.com"
    # Only the platform verifies a workspace's domains.
    verified = await api.http.put(f"{base}/sso/domains/{domain}", headers=MASTER)
    assert verified.status_code == 200, verified.text
    team = await api.http.post(
        f"{base}/teams", headers=owner, json={"name": t.marker, "description": t.marker}
    )
    for response in (key, cred, model, invite, channel, rule, provider, team):
        assert response.status_code == 201, response.text
    t.ids = {
        "key_id": key.json()["data"]["id"],
        "credential_id": cred.json()["data"]["id"],
        "alias": f"alias-{t.marker}",
        "invite_id": invite.json()["data"]["id"],
        "channel_id": channel.json()["data"]["id"],
        "rule_id": rule.json()["data"]["id"],
        "provider_id": provider.json()["data"]["id"],
        "team_id": team.json()["data"]["id"],
        "domain": domain,
        "user_id": t.owner_id,
        "key": key.json()["data"]["key"],
        "request_id": f"req_{t.marker}",
    }
    record = RequestRecord(
        id=f"req_{t.marker}",
        workspace_id=t.workspace_id,
        created_at=time.time(),
        endpoint="chat",
        status=200,
        alias=f"alias-{t.marker}",
        tags=[t.marker],
    )
    await write_batch(api.plane.db, [record])
    t.ids["session_id"] = await _session(api, t, t.ids["key"])


async def _session(api: Any, t: Tenant, key: str) -> str:
    """A chat session made with `key`, holding a message with the tenant's marker."""
    made = await api.http.post(
        "/v1/chat/sessions",
        headers=bearer(key),
        json={"model": t.ids["alias"], "metadata": {"marker": t.marker}},
    )
    assert made.status_code == 200, made.text
    session_id = made.json()["id"]
    store = api.app.gateway.chat_sessions
    found = await store.session(t.workspace_id, session_id, None)
    message = {"role": "user", "content": f"secret of {t.marker}"}
    store.append(found, [StoredMessage(f"msg_{t.marker}{session_id}", message, 8)], 30)
    await store.flush()
    return session_id


# -- route classification -------------------------------------------------------------------

Fresh = Callable[[World, Tenant], Awaitable[dict[str, str]]]


async def _no_fresh(world: World, t: Tenant) -> dict[str, str]:
    return {}


async def _fresh_key(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/keys",
        {"name": f"k{next(_counter)}"},
    )
    return {"key_id": r.json()["data"]["id"]}


async def _fresh_credential(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/credentials",
        {"name": "c", "provider_type": "openai", "api_key": "sk-fresh-1234"},
    )
    return {"credential_id": r.json()["data"]["id"]}


async def _fresh_model(world: World, t: Tenant) -> dict[str, str]:
    alias = f"fresh-{next(_counter)}"
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/models",
        {"alias": alias, "deployments": [{"credential_id": t.ids["credential_id"], "model": "m"}]},
    )
    assert r.status_code == 201, r.text
    return {"alias": alias}


async def _fresh_invite(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/invites",
        {"email": f"fresh{next(_counter)}@example.com", "role": "viewer"},
    )
    return {"invite_id": r.json()["data"]["id"]}


async def _fresh_member(world: World, t: Tenant) -> dict[str, str]:
    plane = world.api.plane
    user_id = await make_user(plane, f"fresh{next(_counter)}@example.com")
    from sqlalchemy import insert

    from perpetuo.store.schema import memberships
    from perpetuo.store.timeutil import utcnow

    async with plane.db.begin() as conn:
        await conn.execute(
            insert(memberships).values(
                workspace_id=t.workspace_id, user_id=user_id, role="viewer", created_at=utcnow()
            )
        )
    return {"user_id": user_id}


async def _fresh_team(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/teams",
        {"name": f"team{next(_counter)}"},
    )
    assert r.status_code == 201, r.text
    return {"team_id": r.json()["data"]["id"]}


async def _fresh_team_member(world: World, t: Tenant) -> dict[str, str]:
    """A fresh member in a fresh team."""
    ids = await _fresh_team(world, t) | await _fresh_member(world, t)
    r = await world.call(
        t.tokens["owner"],
        "PUT",
        f"/api/workspaces/{t.workspace_id}/teams/{ids['team_id']}/members/{ids['user_id']}",
    )
    assert r.status_code == 200, r.text
    return ids


async def _fresh_alert_rule(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/alert-rules",
        {"name": f"r{next(_counter)}", "kind": "key_expiring"},
    )
    return {"rule_id": r.json()["data"]["id"]}


async def _fresh_alert_channel(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/alert-channels",
        {"name": "c", "kind": "slack", "url": "https://hooks.example.com/fresh"},
    )
    return {"channel_id": r.json()["data"]["id"]}


def _provider_body(name: str) -> dict[str, Any]:
    # The issuer is never reached but by a provider's test (which then answers ok=false).
    return {
        "name": name,
        "issuer": "https://idp.invalid",
        "client_id": f"client-{name}",
        "client_secret": f"secret-{name}",
    }


async def _fresh_sso_provider(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/sso/providers",
        _provider_body(f"p{next(_counter)}"),
    )
    assert r.status_code == 201, r.text
    return {"provider_id": r.json()["data"]["id"]}


async def _fresh_session(world: World, t: Tenant) -> dict[str, str]:
    return {"session_id": await _session(world.api, t, t.ids["key"])}


async def _fresh_log(world: World, t: Tenant) -> dict[str, str]:
    return {"request_id": t.ids["request_id"]}


async def _fresh_workspace(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(t.tokens["owner"], "POST", "/api/workspaces", {"name": "scratch"})
    workspace_id = r.json()["data"]["id"]
    plane = world.api.plane
    from sqlalchemy import insert

    from perpetuo.store.role_tables import workspace_roles
    from perpetuo.store.schema import memberships
    from perpetuo.store.timeutil import utcnow

    # Give every role of the tenant the same role in the scratch workspace.
    async with plane.db.begin() as conn:
        for role in ("viewer", "member", "admin", CUSTOM):
            uid = await _user_of(world, t, role)
            await conn.execute(
                insert(memberships).values(
                    workspace_id=workspace_id, user_id=uid, role=role, created_at=utcnow()
                )
            )
        await conn.execute(
            insert(workspace_roles).values(
                id=f"role_scratch{next(_counter)}",
                workspace_id=workspace_id,
                name=CUSTOM,
                description="",
                permissions=CUSTOM_PERMISSIONS,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    return {"workspace_id": workspace_id}


async def _fresh_role(world: World, t: Tenant) -> dict[str, str]:
    r = await world.call(
        t.tokens["owner"],
        "POST",
        f"/api/workspaces/{t.workspace_id}/roles",
        {"name": f"fresh{next(_counter)}", "permissions": ["workspace.read"]},
    )
    return {"role_id": r.json()["data"]["id"]}


async def _user_of(world: World, t: Tenant, role: str) -> str:
    r = await world.call(t.tokens[role], "GET", "/api/auth/me")
    return r.json()["data"]["id"]


@dataclass(frozen=True)
class Route:
    minimum: str
    body: Callable[[Tenant], Any] | None = None
    fresh: Fresh = _no_fresh  # resources the call consumes (deletes, revokes)
    query: str = ""  # required query parameters


WORKSPACE_ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/workspaces/{workspace_id}"): Route("viewer"),
    ("PATCH", "/api/workspaces/{workspace_id}"): Route("admin", lambda t: {"name": "renamed"}),
    ("DELETE", "/api/workspaces/{workspace_id}"): Route("owner", fresh=_fresh_workspace),
    ("GET", "/api/workspaces/{workspace_id}/members"): Route("viewer"),
    ("PATCH", "/api/workspaces/{workspace_id}/members/{user_id}"): Route(
        "admin", lambda t: {"role": "member"}, _fresh_member
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/members/{user_id}"): Route(
        "admin", fresh=_fresh_member
    ),
    ("GET", "/api/workspaces/{workspace_id}/teams"): Route("viewer"),
    ("POST", "/api/workspaces/{workspace_id}/teams"): Route(
        "admin", lambda t: {"name": f"new{next(_counter)}", "limits": {"rpm": 100}}
    ),
    ("GET", "/api/workspaces/{workspace_id}/teams/{team_id}"): Route("viewer"),
    ("PATCH", "/api/workspaces/{workspace_id}/teams/{team_id}"): Route(
        "admin", lambda t: {"limits": {"budget_usd": 10}}
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/teams/{team_id}"): Route("admin", fresh=_fresh_team),
    ("PUT", "/api/workspaces/{workspace_id}/teams/{team_id}/members/{user_id}"): Route("admin"),
    ("DELETE", "/api/workspaces/{workspace_id}/teams/{team_id}/members/{user_id}"): Route(
        "admin", fresh=_fresh_team_member
    ),
    ("GET", "/api/workspaces/{workspace_id}/members/{user_id}/limits"): Route("viewer"),
    ("PUT", "/api/workspaces/{workspace_id}/members/{user_id}/limits"): Route(
        "admin", lambda t: {"limits": {"rpm": 100}}
    ),
    ("GET", "/api/workspaces/{workspace_id}/invites"): Route("admin"),
    ("POST", "/api/workspaces/{workspace_id}/invites"): Route(
        "admin", lambda t: {"email": f"new{next(_counter)}@example.com", "role": "viewer"}
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/invites/{invite_id}"): Route(
        "admin", fresh=_fresh_invite
    ),
    ("GET", "/api/workspaces/{workspace_id}/keys"): Route("viewer"),
    ("POST", "/api/workspaces/{workspace_id}/keys"): Route("member", lambda t: {"name": "n"}),
    ("GET", "/api/workspaces/{workspace_id}/keys/{key_id}"): Route("viewer"),
    ("PATCH", "/api/workspaces/{workspace_id}/keys/{key_id}"): Route(
        "admin", lambda t: {"name": "renamed"}, _fresh_key
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/keys/{key_id}"): Route("admin", fresh=_fresh_key),
    ("POST", "/api/workspaces/{workspace_id}/keys/{key_id}/revoke"): Route(
        "admin", fresh=_fresh_key
    ),
    ("POST", "/api/workspaces/{workspace_id}/keys/{key_id}/rotate"): Route(
        "admin", fresh=_fresh_key
    ),
    ("GET", "/api/workspaces/{workspace_id}/credentials"): Route("viewer"),
    ("POST", "/api/workspaces/{workspace_id}/credentials"): Route(
        "admin", lambda t: {"name": "c", "provider_type": "openai", "api_key": "sk-new-12345"}
    ),
    ("GET", "/api/workspaces/{workspace_id}/credentials/{credential_id}"): Route("viewer"),
    ("DELETE", "/api/workspaces/{workspace_id}/credentials/{credential_id}"): Route(
        "admin", fresh=_fresh_credential
    ),
    ("POST", "/api/workspaces/{workspace_id}/credentials/{credential_id}/test"): Route("admin"),
    ("POST", "/api/workspaces/{workspace_id}/credentials/{credential_id}/models"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/models"): Route("viewer"),
    ("POST", "/api/workspaces/{workspace_id}/models"): Route(
        "admin",
        lambda t: {
            "alias": f"new-{next(_counter)}",
            "deployments": [{"credential_id": t.ids["credential_id"], "model": "m"}],
        },
    ),
    ("GET", "/api/workspaces/{workspace_id}/models/{alias}"): Route("viewer"),
    ("PUT", "/api/workspaces/{workspace_id}/models/{alias}"): Route(
        "admin",
        lambda t: {"deployments": [{"credential_id": t.ids["credential_id"], "model": "m2"}]},
        _fresh_model,
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/models/{alias}"): Route("admin", fresh=_fresh_model),
    ("GET", "/api/workspaces/{workspace_id}/audit"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/credits"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/credits/balance"): Route("viewer"),
    ("GET", "/api/workspaces/{workspace_id}/usage"): Route("viewer"),
    ("GET", "/api/workspaces/{workspace_id}/usage/breakdown"): Route(
        "viewer", query="?group_by=alias"
    ),
    ("GET", "/api/workspaces/{workspace_id}/logs"): Route("viewer"),
    ("GET", "/api/workspaces/{workspace_id}/logs/export.csv"): Route("viewer"),
    ("GET", "/api/workspaces/{workspace_id}/logs/{request_id}"): Route("viewer", fresh=_fresh_log),
    ("GET", "/api/workspaces/{workspace_id}/cache"): Route("viewer"),
    ("GET", "/api/workspaces/{workspace_id}/chat-sessions"): Route("viewer"),
    ("GET", "/api/workspaces/{workspace_id}/chat-sessions.json"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/chat-sessions/{session_id}"): Route("admin"),
    ("DELETE", "/api/workspaces/{workspace_id}/chat-sessions/{session_id}"): Route(
        "admin", fresh=_fresh_session
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/cache"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/alert-rules"): Route("viewer"),
    ("POST", "/api/workspaces/{workspace_id}/alert-rules"): Route(
        "admin", lambda t: {"name": "r", "kind": "key_expiring"}
    ),
    ("GET", "/api/workspaces/{workspace_id}/alert-rules/{rule_id}"): Route("viewer"),
    ("PATCH", "/api/workspaces/{workspace_id}/alert-rules/{rule_id}"): Route(
        "admin", lambda t: {"name": "renamed"}
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/alert-rules/{rule_id}"): Route(
        "admin", fresh=_fresh_alert_rule
    ),
    ("GET", "/api/workspaces/{workspace_id}/alert-channels"): Route("viewer"),
    ("POST", "/api/workspaces/{workspace_id}/alert-channels"): Route(
        "admin", lambda t: {"name": "c", "kind": "slack", "url": "https://hooks.example.com/n"}
    ),
    ("GET", "/api/workspaces/{workspace_id}/alert-channels/{channel_id}"): Route("viewer"),
    ("PATCH", "/api/workspaces/{workspace_id}/alert-channels/{channel_id}"): Route(
        "admin", lambda t: {"name": "renamed"}
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/alert-channels/{channel_id}"): Route(
        "admin", fresh=_fresh_alert_channel
    ),
    # The receiver cannot be reached from the test: ok=false, still 200.
    ("POST", "/api/workspaces/{workspace_id}/alert-channels/{channel_id}/test"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/alerts"): Route("viewer"),
    ("GET", "/api/workspaces/{workspace_id}/sso/providers"): Route("admin"),
    ("POST", "/api/workspaces/{workspace_id}/sso/providers"): Route(
        "admin", lambda t: _provider_body(f"new{next(_counter)}")
    ),
    ("GET", "/api/workspaces/{workspace_id}/sso/providers/{provider_id}"): Route("admin"),
    ("PATCH", "/api/workspaces/{workspace_id}/sso/providers/{provider_id}"): Route(
        "admin", lambda t: {"name": "renamed", "client_secret": "another-secret"}
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/sso/providers/{provider_id}"): Route(
        "admin", fresh=_fresh_sso_provider
    ),
    # The issuer cannot be reached from the test: ok=false, still 200.
    ("POST", "/api/workspaces/{workspace_id}/sso/providers/{provider_id}/test"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/sso/domains"): Route("admin"),
    ("GET", "/api/workspaces/{workspace_id}/roles"): Route("viewer"),
    ("POST", "/api/workspaces/{workspace_id}/roles"): Route(
        "admin", lambda t: {"name": f"new{next(_counter)}", "permissions": ["workspace.read"]}
    ),
    ("GET", "/api/workspaces/{workspace_id}/roles/{role_id}"): Route("viewer"),
    ("PATCH", "/api/workspaces/{workspace_id}/roles/{role_id}"): Route(
        "admin", lambda t: {"description": "changed"}
    ),
    ("DELETE", "/api/workspaces/{workspace_id}/roles/{role_id}"): Route("admin", fresh=_fresh_role),
}
WORKSPACE_ROUTES |= billing.route_table(Route, _fresh_workspace)
# Workspace routes no workspace role may use: only platform administrators (and the master
# key), e.g. granting credits. Body per route.
SUPERADMIN_WORKSPACE_ROUTES: dict[tuple[str, str], Callable[[Tenant], Any]] = {
    ("POST", "/api/workspaces/{workspace_id}/credits"): lambda t: {
        "amount_usd": 5,
        "note": t.marker,
    },
    # A verified domain lets the workspace's provider vouch for its addresses.
    ("PUT", "/api/workspaces/{workspace_id}/sso/domains/{domain}"): lambda t: None,
    ("DELETE", "/api/workspaces/{workspace_id}/sso/domains/{domain}"): lambda t: None,
}
# Routes about the caller alone, or with no workspace in them (tested in their own modules).
SELF_ROUTES = {
    ("POST", "/api/auth/signup"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/refresh"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/auth/me"),
    ("PATCH", "/api/auth/me"),
    ("GET", "/api/workspaces"),
    ("POST", "/api/workspaces"),
    ("POST", "/api/invites/accept"),
    # Mailed links: the token names the account (tested in tests/control/mail/).
    ("POST", "/api/auth/verify-email"),
    ("POST", "/api/auth/verify-email/resend"),
    ("POST", "/api/auth/password-reset"),
    ("POST", "/api/auth/password-reset/confirm"),
    ("GET", "/api/auth/me/mail-preferences"),
    ("PATCH", "/api/auth/me/mail-preferences"),
    ("POST", "/api/mail/unsubscribe"),
    # Names a workspace in its body, if any: isolation tested in test_guardrails_e2e.py.
    ("POST", "/api/guardrails/test"),
    # The ways to sign in, for the sign-in page: the platform's providers, and the provider
    # of an address's verified domain (tests/ui/test_sso_oidc.py).
    ("GET", "/api/auth/sso/providers"),
    ("GET", "/api/permissions"),  # the same list for everyone
} | billing.SELF_ROUTES
# Routes nobody signs in for, off unless the operator turns them on (test_catalog.py).
PUBLIC_ROUTES = {
    ("GET", "/api/catalog/models"),
    ("GET", "/api/catalog/providers"),
    ("GET", "/api/rankings/models"),
}
# Platform alert routes with a body or an id: refused to workspace people in
# tests/control/alerts/test_api.py (the lists are in PLATFORM_ROUTES).
PLATFORM_ALERT_ROUTES = {
    ("POST", "/api/admin/alert-rules"),
    ("GET", "/api/admin/alert-rules/{rule_id}"),
    ("PATCH", "/api/admin/alert-rules/{rule_id}"),
    ("DELETE", "/api/admin/alert-rules/{rule_id}"),
    ("POST", "/api/admin/alert-channels"),
    ("GET", "/api/admin/alert-channels/{channel_id}"),
    ("PATCH", "/api/admin/alert-channels/{channel_id}"),
    ("DELETE", "/api/admin/alert-channels/{channel_id}"),
    ("POST", "/api/admin/alert-channels/{channel_id}/test"),
}
PLATFORM_ROUTES = billing.PLATFORM_ROUTES | {
    ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/alert-rules"),
    ("GET", "/api/admin/alert-channels"),
    ("GET", "/api/admin/alerts"),
    ("GET", "/api/admin/users"),
    ("POST", "/api/admin/reload"),
    ("POST", "/api/admin/users/{user_id}/disable"),
    ("POST", "/api/admin/users/{user_id}/enable"),
}


@pytest.fixture
async def world(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    fake = FakeStripe().start()  # billing on, so its routes are classified and checked
    config, settings = billing.billing_options(fake)
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    try:
        async with admin_api(url, tmp_path, config, **settings) as api:
            a, b = await _tenant(api, "aaa"), await _tenant(api, "bbb")
            for tenant in (a, b):
                await billing.fill_billing(api, fake, tenant)
            yield World(api, a, b)
    finally:
        fake.stop()


def _path(template: str, workspace_id: str, ids: dict[str, str]) -> str:
    route = WORKSPACE_ROUTES.get(("GET", template)) or next(
        (r for (_, t), r in WORKSPACE_ROUTES.items() if t == template), None
    )
    path = template.replace("{workspace_id}", workspace_id) + (route.query if route else "")
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


async def test_every_admin_route_is_classified(world):
    schema = world.api.app.admin_app().openapi()
    routes = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    classified = set(WORKSPACE_ROUTES) | set(SUPERADMIN_WORKSPACE_ROUTES)
    classified |= set(billing.PLATFORM_BODY_ROUTES) | set(billing.NAMED_WORKSPACE_ROUTES)
    others = SELF_ROUTES | PLATFORM_ROUTES | PLATFORM_ALERT_ROUTES | PUBLIC_ROUTES
    unclassified = routes - classified - others
    assert not unclassified, f"classify these routes in the isolation suite: {unclassified}"
    assert not (classified | others) - routes


async def test_another_workspaces_ids_give_404_and_no_data(world):
    a, b = world.a, world.b
    leaks = (
        b.marker,
        b.ids["key_id"],
        b.ids["credential_id"],
        b.ids["invite_id"],
        b.ids["request_id"],
        b.ids["session_id"],
        b.ids["rule_id"],
        b.ids["channel_id"],
        b.ids["provider_id"],
        b.ids["role_id"],
        b.ids["team_id"],
    )
    for (method, template), route in WORKSPACE_ROUTES.items():
        for role in CALLERS:
            for workspace_id in (b.workspace_id, a.workspace_id):
                # B's workspace outright, or A's workspace with B's resource ids in it.
                ids = {k: v for k, v in b.ids.items() if k != "user_id"} | {"user_id": b.owner_id}
                if workspace_id == a.workspace_id and not any(
                    "{" + k + "}" in template
                    for k in (
                        "key_id",
                        "credential_id",
                        "alias",
                        "invite_id",
                        "user_id",
                        "session_id",
                        "rule_id",
                        "channel_id",
                        "provider_id",
                        "role_id",
                        "team_id",
                    )
                ):
                    continue
                path = _path(template, workspace_id, ids)
                body = route.body(a) if route.body else None
                response = await world.call(a.tokens[role], method, path, body)
                if workspace_id == a.workspace_id and response.status_code == 403:
                    continue  # A's own workspace, a role too low: refused before any lookup
                assert response.status_code == 404, (
                    role,
                    method,
                    path,
                    response.status_code,
                    response.text,
                )
                assert not any(leak in response.text for leak in leaks), (role, method, path)


def _allowed(role: str, route_key: tuple[str, str], minimum: str) -> bool:
    if role == CUSTOM:
        return _allowed("member", route_key, minimum) or route_key in CUSTOM_ALSO
    return ROLES.index(role) >= ROLES.index(minimum)


async def test_roles_in_ones_own_workspace(world):
    a = world.a
    for (method, template), route in WORKSPACE_ROUTES.items():
        for role in CALLERS:
            fresh = await route.fresh(world, a)
            workspace_id = fresh.pop("workspace_id", a.workspace_id)
            path = _path(template, workspace_id, {**a.ids, **fresh})
            response = await world.call(
                a.tokens[role], method, path, route.body(a) if route.body else None
            )
            allowed = _allowed(role, (method, template), route.minimum)
            if not allowed:
                assert response.status_code == 403, (role, method, path, response.text)
            elif template.endswith("/test"):
                assert (
                    response.status_code == 200
                )  # the upstream is unreachable: ok=false, still 200
            elif template.endswith("/credentials/{credential_id}/models"):
                assert response.status_code == 502, response.text  # the upstream is unreachable
            else:
                assert response.status_code in (200, 201, 204), (role, method, path, response.text)


async def test_platform_routes_refuse_workspace_people(world):
    for method, template in PLATFORM_ROUTES:
        path = _path(template, "", {"user_id": world.b.owner_id})
        for role in CALLERS:
            response = await world.call(world.a.tokens[role], method, path)
            assert response.status_code == 403, (role, method, path)
            assert world.b.marker not in response.text
        allowed = await world.api.http.request(method, path, headers=MASTER)
        assert allowed.status_code == 200


async def test_superadmin_workspace_routes_refuse_every_workspace_role(world):
    a, b = world.a, world.b
    for (method, template), body in SUPERADMIN_WORKSPACE_ROUTES.items():
        for role in CALLERS:
            own = _path(template, a.workspace_id, a.ids)
            response = await world.call(a.tokens[role], method, own, body(a))
            assert response.status_code == 403, (role, method, own, response.text)
            other = _path(template, b.workspace_id, b.ids)
            response = await world.call(a.tokens[role], method, other, body(a))
            assert response.status_code == 404, (role, method, other, response.text)
            assert b.marker not in response.text
        path = _path(template, a.workspace_id, a.ids)
        allowed = await world.api.http.request(method, path, headers=MASTER, json=body(a))
        assert allowed.status_code in (200, 201, 204), allowed.text


async def test_workspace_lists_never_include_other_workspaces(world):
    response = await world.call(world.a.tokens["viewer"], "GET", "/api/workspaces")
    ids = {w["id"] for w in response.json()["data"]}
    assert world.a.workspace_id in ids and world.b.workspace_id not in ids
    audit = await world.call(
        world.a.tokens["owner"], "GET", f"/api/workspaces/{world.a.workspace_id}/audit?limit=200"
    )
    assert world.b.marker not in audit.text
    base = f"/api/workspaces/{world.a.workspace_id}"
    for path in (
        "/logs",
        "/chat-sessions",
        "/usage?group_by=tag",
        "/usage/breakdown?group_by=tag",
        "/logs/export.csv",
    ):
        response = await world.call(world.a.tokens["viewer"], "GET", base + path)
        assert response.status_code == 200, (path, response.text)
        assert world.a.marker in response.text and world.b.marker not in response.text, path


async def test_data_plane_keys_see_only_their_workspace_models(world):
    a, b = world.a, world.b
    models = await world.api.http.get("/v1/models", headers=bearer(a.ids["key"]))
    ids = {m["id"] for m in models.json()["data"]}
    assert a.ids["alias"] in ids and b.ids["alias"] not in ids
    chat = await world.api.http.post(
        "/v1/chat/completions",
        headers=bearer(a.ids["key"]),
        json={"model": b.ids["alias"], "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 404 and chat.json()["error"]["code"] == "model_not_found"
    assert b.ids["credential_id"] not in chat.text  # the answer echoes only the name it was sent


async def test_chat_sessions_are_their_makers_alone(world):
    a, b = world.a, world.b
    http = world.api.http
    session = a.ids["session_id"]
    base = f"/api/workspaces/{a.workspace_id}/keys"
    second = await http.post(base, headers=bearer(a.tokens["owner"]), json={"name": "again"})
    other = await http.post(base, headers=bearer(a.tokens["member"]), json={"name": "theirs"})
    same_person, other_person = second.json()["data"]["key"], other.json()["data"]["key"]
    for key in (b.ids["key"], other_person):  # another workspace; another person's key
        for method, path in (
            ("GET", f"/v1/chat/sessions/{session}"),
            ("DELETE", f"/v1/chat/sessions/{session}"),
            ("POST", f"/v1/chat/sessions/{session}/messages"),
        ):
            body = {"messages": [{"role": "user", "content": "x"}]}
            response = await http.request(method, path, headers=bearer(key), json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert a.marker not in response.text
        listed = await http.get("/v1/chat/sessions", headers=bearer(key))
        assert session not in listed.text and a.marker not in listed.text
    mine = await http.get(f"/v1/chat/sessions/{session}", headers=bearer(same_person))
    assert mine.status_code == 200 and f"secret of {a.marker}" in mine.text
    export = await world.call(
        a.tokens["admin"], "GET", f"/api/workspaces/{a.workspace_id}/chat-sessions.json"
    )
    assert export.status_code == 200 and f"secret of {a.marker}" in export.text
    assert b.marker not in export.text and b.ids["session_id"] not in export.text


async def test_routes_naming_a_workspace_in_the_body_or_query(world):
    a, b = world.a, world.b
    for (method, _), (minimum, request) in billing.NAMED_WORKSPACE_ROUTES.items():
        for role in CALLERS:
            path, body = request(b.workspace_id)
            response = await world.call(a.tokens[role], method, path, body)
            assert response.status_code == 404, (role, path, response.text)
            assert b.marker not in response.text and b.workspace_id not in response.text
            path, body = request(a.workspace_id)
            response = await world.call(a.tokens[role], method, path, body)
            allowed = _allowed(role, (method, path), minimum)
            expected = (200, 201, 409) if allowed else (403,)  # 409: the trial was used
            assert response.status_code in expected, (role, path, response.text)


async def test_platform_billing_routes_refuse_workspace_people(world):
    for (method, template), body in billing.PLATFORM_BODY_ROUTES.items():
        path = template.replace("{coupon_id}", world.b.ids["coupon_id"])
        for role in CALLERS:
            response = await world.call(world.a.tokens[role], method, path, body(world.a))
            assert response.status_code == 403, (role, path, response.text)
            assert world.b.marker not in response.text
        allowed = await world.api.http.request(method, path, headers=MASTER, json=body(world.a))
        assert allowed.status_code in (200, 201), allowed.text
