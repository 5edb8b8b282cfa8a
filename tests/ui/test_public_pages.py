"""The dashboard's chat-session pages and the public pages (landing, pricing, catalog,
rankings), rendered in-process: what each shows, and that each public page stays a 404 (or
asks to sign in) until the operator turns it on."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config import GatewayConfig
from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from perpetuo.store.schema import audit_log
from tests.support.admin_api import admin_api
from tests.ui.world import world

CONFIG = {
    "providers": {"openai-main": {"type": "openai", "api_key": "sk-test-unused-1234"}},
    "models": {
        "gpt-4o-mini": {
            "description": "Small and fast",
            "deployments": [{"provider": "openai-main", "model": "gpt-4o-mini"}],
        }
    },
}
PUBLIC = {"catalog": True, "rankings": True, "landing": True, "pricing": True, "name": "Acme AI"}
PUBLIC_PAGES = ("/ui/home", "/ui/pricing", "/ui/catalog", "/ui/rankings")


@pytest.fixture
async def w(tmp_path, monkeypatch):
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    async with world(tmp_path) as made:
        yield made


async def test_the_sessions_pages_show_the_workspaces_conversations(w):
    a, b = w.a, w.b
    viewer, admin = a.people["viewer"], a.people["admin"]
    listed = await viewer.get(f"/ui/w/{a.workspace_id}/sessions")
    assert listed.status_code == 200 and a.ids["session_id"] in listed.text
    assert b.ids["session_id"] not in listed.text and "secret of" not in listed.text
    detail = await admin.get(f"/ui/w/{a.workspace_id}/sessions/{a.ids['session_id']}")
    assert detail.status_code == 200 and f"secret of {a.marker}" in detail.text
    export = await admin.get(f"/ui/w/{a.workspace_id}/sessions/export.json")
    body = json.loads(export.text)
    assert body["workspace_id"] == a.workspace_id
    (session,) = body["sessions"]
    assert session["messages"][0]["message"]["content"] == f"secret of {a.marker}"
    deleted = await admin.post(f"/ui/w/{a.workspace_id}/sessions/{a.ids['session_id']}/delete")
    assert deleted.status_code == 303
    again = await admin.get(f"/ui/w/{a.workspace_id}/sessions/{a.ids['session_id']}")
    assert again.status_code == 404
    async with w.api.plane.db.connect() as conn:
        actions = set((await conn.execute(select(audit_log.c.action))).scalars())
    assert {"chat_session.export", "chat_session.delete"} <= actions


async def test_the_retention_setting_is_on_the_settings_page(w):
    a = w.a
    url = f"/ui/w/{a.workspace_id}/settings"
    saved = await a.people["admin"].post(
        url, {"name": "renamed", "chat_session_retention_days": "9"}
    )
    assert saved.status_code == 303
    page = await a.people["viewer"].get(url)
    assert "9 days after their last message" in page.text


async def test_public_pages_are_off_until_the_operator_turns_them_on(tmp_path):
    async with admin_api(
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, GatewayConfig(**CONFIG)
    ) as api:
        for path in ("/ui/home", "/ui/pricing", "/ui/rankings"):
            response = await api.http.get(path)
            assert response.status_code == 404, path
        catalog = await api.http.get("/ui/catalog")
        assert catalog.status_code == 303 and "/ui/login" in catalog.headers["location"]
        root = await api.http.get("/", headers={"accept": "text/html"})
        assert root.status_code == 200 and root.json() == {"status": "ok"}


async def test_public_pages_render_what_they_promise(tmp_path):
    config = GatewayConfig(**CONFIG, public={**PUBLIC, "rankings_min_workspaces": 2})
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path, config) as api:
        await write_batch(api.plane.db, [_used("ws_default"), _used("ws_other")])
        pages = {path: await api.http.get(path) for path in PUBLIC_PAGES}
        for path, response in pages.items():
            assert response.status_code == 200, (path, response.text[:300])
            assert "Acme AI" in response.text and "Sign in" in response.text, path
        assert "One API for every model" in pages["/ui/home"].text
        pricing = pages["/ui/pricing"].text
        assert 'data-plan="free"' in pricing and 'data-plan="enterprise"' in pricing
        assert "10k" in pricing  # the free plan's tokens per minute
        assert "$0.15" in pricing and "$0.60" in pricing and "$0.075" in pricing  # per million
        catalog = pages["/ui/catalog"].text
        assert "Small and fast" in catalog and "128k tokens" in catalog
        assert "sk-test-unused" not in catalog and "api.openai.com" not in catalog
        assert 'data-model="gpt-4o-mini"' in pages["/ui/rankings"].text
        root = await api.http.get("/", headers={"accept": "text/html"})
        assert root.status_code == 302 and root.headers["location"] == "/ui/home"
        probe = await api.http.get("/")
        assert probe.status_code == 200  # clients probing the base URL still get JSON


def _used(workspace_id: str) -> RequestRecord:
    return RequestRecord(
        id=f"req_{workspace_id}",
        workspace_id=workspace_id,
        created_at=time.time(),
        endpoint="chat",
        status=200,
        alias="gpt-4o-mini",
        prompt_tokens=10,
        completion_tokens=5,
        latency_ms=120.0,
    )
