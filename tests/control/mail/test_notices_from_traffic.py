"""The budget and key mails from what causes them in a running gateway, not from a direct
call of the job: spend through the data plane passing a workspace's alert threshold mails its
owners and admins once per budget period, and the mail worker's periodic pass mails the
owner of a key about to expire once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config import GatewayConfig
from perpetuo.store.timeutil import utcnow
from tests.mocks.openai_mock import OpenAIMock
from tests.support.admin_api import AdminAPI, admin_api, bearer
from tests.support.people import make_user, make_workspace, sign_in
from tests.support.smtp import SMTPServer, text_of


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    mock = OpenAIMock().start()
    yield mock
    mock.stop()


@pytest.fixture
async def api(tmp_path, monkeypatch, upstream, smtp: SMTPServer) -> AsyncIterator[AdminAPI]:
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    config = GatewayConfig.model_validate(
        {
            "providers": {
                "up": {
                    "type": "openai",
                    "api_base": f"{upstream.url}/v1",
                    "api_key": "sk-test-openai",
                }
            },
            "models": {"m": {"deployments": [{"provider": "up", "model": "gpt-4o-mini"}]}},
        }
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, config, **smtp.settings()) as api:
        yield api


async def _team(api: AdminAPI) -> tuple[str, str]:
    """A workspace with an owner, an admin and a member; (its id, the owner's token)."""
    owner = await make_user(api.plane, "own@example.com")
    people = {
        owner: "owner",
        await make_user(api.plane, "adm@example.com"): "admin",
        await make_user(api.plane, "mem@example.com"): "member",
    }
    workspace_id = await make_workspace(api.plane, people)
    return workspace_id, (await sign_in(api.plane, owner)).access_token


async def test_spend_past_the_alert_threshold_mails_the_admins_once(api, smtp):
    workspace_id, token = await _team(api)
    base = f"/api/workspaces/{workspace_id}"
    patched = await api.http.patch(
        base, headers=bearer(token), json={"settings": {"budget_soft_usd": 0.000001}}
    )
    assert patched.status_code == 200, patched.text
    made = await api.http.post(f"{base}/keys", headers=bearer(token), json={"name": "k"})
    key = made.json()["data"]["key"]
    for _ in range(3):  # the first request passes the threshold, the others are past it
        answer = await api.http.post(
            "/v1/chat/completions",
            headers=bearer(key),
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert answer.status_code == 200, answer.text
    mails = await smtp.inbox.wait_for(count=2)
    assert sorted(m["To"] for m in mails) == ["adm@example.com", "own@example.com"]
    assert "alert" in mails[0]["Subject"] and f"/ui/w/{workspace_id}/usage" in text_of(mails[0])
    await smtp.inbox.wait_for(count=3, within=1.0)
    assert len(smtp.inbox.messages) == 2  # once per period, not per request


async def test_the_mail_workers_pass_warns_of_a_key_about_to_expire_once(api, smtp):
    workspace_id, token = await _team(api)
    expires = (utcnow() + dt.timedelta(days=3)).isoformat()
    made = await api.http.post(
        f"/api/workspaces/{workspace_id}/keys",
        headers=bearer(token),
        json={"name": "ci", "expires_at": expires},
    )
    assert made.status_code == 201, made.text
    worker = api.plane.mail.worker
    for _ in range(2):  # every instance runs the pass
        await worker.run_jobs()
    [mail] = await smtp.inbox.wait_for(To="own@example.com")
    assert mail["Subject"].startswith('API key "ci" expires')
    await smtp.inbox.wait_for(count=2, within=1.0)
    assert len(smtp.inbox.messages) == 1  # the key's owner only, once
