"""Two workspaces with people of every role, driven through the dashboard in-process (httpx over
the real ASGI application), for the access, CSRF and isolation tests."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from perpetuo.control.chat_sessions import ChatSession
from perpetuo.control.session_history import StoredMessage
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from perpetuo.store.ids import new_id
from perpetuo.store.timeutil import utcnow
from tests.support.admin_api import AdminAPI, admin_api, bearer
from tests.support.people import make_user, make_workspace, sign_in
from tests.ui.billing_world import billing_options, subscribe

ROLES = ("viewer", "member", "admin", "owner")
ORIGIN = "http://gateway"
counter = itertools.count()


@dataclass
class Person:
    """Someone signed in to the dashboard: their session cookie and CSRF token."""

    http: httpx.AsyncClient
    user_id: str
    session: str  # the cookie value
    access_token: str
    csrf: str = ""

    def headers(self, origin: str | None = ORIGIN) -> dict[str, str]:
        headers = {"cookie": f"perpetuo_session={self.session}"}
        if origin:
            headers["origin"] = origin
        return headers

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers=self.headers(None))

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, token: bool = True, **options: Any
    ) -> httpx.Response:
        form = dict(data or {})
        if token:
            form["csrf_token"] = self.csrf
        headers = {**self.headers(options.pop("origin", ORIGIN)), **options.pop("headers", {})}
        return await self.http.post(path, data=form, headers=headers, **options)


@dataclass
class Tenant:
    workspace_id: str
    people: dict[str, Person]  # by role
    marker: str
    ids: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    api: AdminAPI
    a: Tenant
    b: Tenant
    superadmin: Person


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match[1]


async def signed_in(api: AdminAPI, user_id: str) -> Person:
    tokens = await sign_in(api.plane, user_id)
    person = Person(api.client("127.0.0.1"), user_id, tokens.refresh_token, tokens.access_token)
    person.csrf = csrf_of((await person.get("/ui/workspaces")).text)
    return person


async def tenant(api: AdminAPI, name: str) -> Tenant:
    users = {role: await make_user(api.plane, f"{name}-{role}@example.com") for role in ROLES}
    workspace_id = await make_workspace(api.plane, {uid: role for role, uid in users.items()})
    people = {role: await signed_in(api, uid) for role, uid in users.items()}
    made = Tenant(workspace_id, people, f"marker-{name}")
    await fill(api, made)
    return made


async def fill(api: AdminAPI, t: Tenant) -> None:
    """One of everything, through the admin API, each carrying the tenant's marker."""
    owner = bearer(t.people["owner"].access_token)
    member = bearer(t.people["member"].access_token)
    base = f"/api/workspaces/{t.workspace_id}"
    cred = await api.http.post(
        f"{base}/credentials",
        headers=owner,
        json={
            "name": t.marker,
            "provider_type": "openai",
            "api_key": "sk-unreachable-1234",
            "api_base": "https://unreachable.invalid/v1",  # reserved: never resolves
        },
    )
    alias = f"alias-{t.marker}"
    model = await api.http.post(
        f"{base}/models",
        headers=owner,
        json={
            "alias": alias,
            "description": t.marker,
            "deployments": [{"credential_id": cred.json()["data"]["id"], "model": "gpt-4o-mini"}],
        },
    )
    key = await api.http.post(f"{base}/keys", headers=member, json={"name": t.marker})
    invite = await api.http.post(
        f"{base}/invites", headers=owner, json={"email": f"{t.marker}@example.com"}
    )
    for response in (cred, model, key, invite):
        assert response.status_code == 201, response.text
    t.ids = {
        "credential_id": cred.json()["data"]["id"],
        "alias": alias,
        "key_id": key.json()["data"]["id"],
        "invite_id": invite.json()["data"]["id"],
        "request_id": f"req_{t.marker}",
        "user_id": t.people["owner"].user_id,
    }
    record = RequestRecord(
        id=f"req_{t.marker}",
        workspace_id=t.workspace_id,
        created_at=time.time(),
        endpoint="chat",
        status=200,
        alias=alias,
        key_id=t.ids["key_id"],
        tags=[t.marker],
    )
    await write_batch(api.plane.db, [record])
    t.ids["session_id"] = await make_session(api, t)


async def make_session(api: AdminAPI, t: Tenant) -> str:
    """A chat session of the tenant's key, holding one message with the tenant's marker."""
    store = api.app.gateway.chat_sessions
    session = ChatSession(
        id=new_id("cs"),
        workspace_id=t.workspace_id,
        model=t.ids["alias"],
        max_history_tokens=1000,
        key_id=t.ids["key_id"],
        metadata={"marker": t.marker},
        expires_at=utcnow() + dt.timedelta(days=30),
    )
    await store.create(session)
    message = {"role": "user", "content": f"secret of {t.marker}"}
    store.append(session, [StoredMessage(new_id("msg"), message, 8)], 30)
    await store.flush()
    return session.id


@asynccontextmanager
async def world(tmp_path: Any, stripe: Any = None):
    """With `stripe` (a FakeStripe), billing is on and each tenant is subscribed."""
    config, settings = None, {}
    if stripe is not None:
        config, settings = billing_options(stripe)
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, config, **settings) as api:
        root = await make_user(api.plane, "root@example.com", superadmin=True)
        a, b = await tenant(api, "aaa"), await tenant(api, "bbb")
        if stripe is not None:
            for made in (a, b):
                await subscribe(api, stripe, made)
        yield World(api, a, b, await signed_in(api, root))
