"""`log_request_bodies`: with the workspace setting on, the request log keeps each chat
request and answer (a stream's assembled text and tool calls), masked by the guardrails'
secret and PII detectors and cut at 32 KiB; only workspace admins and owners see them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from perpetuo.metering.record import RequestRecord
from perpetuo.metering.writer import write_batch
from tests.conftest import full_config
from tests.support.admin_api import admin_api, bearer
from tests.support.gateway import MASTER_KEY, GatewayProcess
from tests.support.people import make_user, make_workspace
from tests.ui.world import ROLES, signed_in

MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
EMAIL = "ann.secret@example.com"
PROVIDER_KEY = "sk-proj-" + "A1b2C3d4" * 5
PROMPT = f"write to {EMAIL} with key {PROVIDER_KEY}"
WS = "/api/workspaces/ws_default"


@pytest.fixture(scope="module")
def gateway(mocks, tmp_path_factory) -> Iterator[GatewayProcess]:
    config, env = full_config(mocks)
    config = {
        "providers": {"openai-main": config["providers"]["openai-main"]},
        "models": {"gpt-4o-mini": config["models"]["gpt-4o-mini"]},
    }
    with GatewayProcess(config, tmp_path_factory.mktemp("bodies"), env=env) as gw:
        yield gw


def log_bodies(gw: GatewayProcess, on: bool) -> None:
    reply = httpx.patch(
        f"{gw.url}{WS}", headers=MASTER, json={"settings": {"log_request_bodies": on}}
    )
    assert reply.status_code == 200, reply.text


def chat(gw: GatewayProcess, content: str, **extra) -> str:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}
    with httpx.stream(
        "POST", f"{gw.url}/v1/chat/completions", headers=MASTER, json=body, timeout=30
    ) as reply:
        reply.read()
        assert reply.status_code == 200, reply.text
        return reply.headers["x-request-id"]


def detail(gw: GatewayProcess, request_id: str) -> dict:
    deadline = time.monotonic() + 10
    while True:  # the request log is written in batches
        reply = httpx.get(f"{gw.url}{WS}/logs/{request_id}", headers=MASTER)
        if reply.status_code == 200:
            return reply.json()["data"]["detail"] or {}
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.1)


def test_bodies_are_kept_masked_when_the_workspace_asks(gateway):
    log_bodies(gateway, True)
    try:
        plain = detail(gateway, chat(gateway, PROMPT))
        streamed = detail(gateway, chat(gateway, PROMPT + " in small pieces", stream=True))
    finally:
        log_bodies(gateway, False)
    for kept in (plain, streamed):
        request, response = kept["request_body"], kept["response_body"]
        assert request["truncated"] is False and response["truncated"] is False
        assert '"model":"gpt-4o-mini"' in request["text"]
        assert "write to <EMAIL_1> with key <API_KEY_1>" in request["text"]
        assert "Echo: write to <EMAIL_1> with key <API_KEY_1>" in response["text"]
        for secret in (EMAIL, PROVIDER_KEY, "A1b2C3d4"):
            assert secret not in str(kept)
    assert '"stream":true' in streamed["response_body"]["text"]  # assembled from the chunks


def test_each_body_is_cut_at_32_kib(gateway):
    log_bodies(gateway, True)
    try:
        kept = detail(gateway, chat(gateway, "lorem ipsum " * 5000))
    finally:
        log_bodies(gateway, False)
    for name in ("request_body", "response_body"):
        assert kept[name]["truncated"] is True
        assert len(kept[name]["text"].encode()) <= 32 * 1024


def test_nothing_is_kept_when_the_setting_is_off(gateway):
    kept = detail(gateway, chat(gateway, PROMPT))
    assert "request_body" not in kept and "response_body" not in kept


async def test_only_admins_and_owners_see_the_bodies(tmp_path):
    async with admin_api(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path) as api:
        users = {role: await make_user(api.plane, f"{role}@example.com") for role in ROLES}
        workspace_id = await make_workspace(api.plane, {u: role for role, u in users.items()})
        bodies = {"text": '{"messages":"the-kept-prompt"}', "truncated": False}
        record = RequestRecord(
            id="req_with_bodies",
            workspace_id=workspace_id,
            created_at=time.time(),
            endpoint="chat",
            status=200,
            detail={"request_body": bodies, "response_body": bodies, "cache": {"result": "miss"}},
        )
        await write_batch(api.plane.db, [record])
        api_path = f"/api/workspaces/{workspace_id}/logs/req_with_bodies"
        page_path = f"/ui/w/{workspace_id}/logs/req_with_bodies"
        for role, sees in (("viewer", False), ("member", False), ("admin", True), ("owner", True)):
            person = await signed_in(api, users[role])
            reply = await api.http.get(api_path, headers=bearer(person.access_token))
            assert reply.status_code == 200, reply.text
            kept = reply.json()["data"]["detail"]
            assert ("request_body" in kept) is sees, role
            assert kept["cache"] == {"result": "miss"}  # the rest of the detail is for everyone
            page = await person.get(page_path)
            assert page.status_code == 200
            assert ("the-kept-prompt" in page.text) is sees, role
