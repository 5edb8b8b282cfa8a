"""Team and user budgets through the gateway: set with the admin API, read by the data plane
with each key (no query per request), and exact under 200 concurrent chat requests, on
SQLite with in-process counters and on PostgreSQL with two instances sharing Redis.

The upstream holds every answer long enough that all 200 requests are admitted or refused
before any settles, so exactly the requests whose worst-case cost fits are admitted. The
alias is priced at $1 per million tokens, so a request's worst case in micro-USD equals its
token estimate, which a probe reads from a token-quota refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from perpetuo.config import GatewayConfig
from perpetuo.limits.redis_backend import RedisBackend
from tests.mocks.server import Fault
from tests.support.admin_api import AdminAPI, admin_api, bearer
from tests.support.people import make_user, make_workspace, sign_in

CHAT = {"model": "priced", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20}
HOLD = 6.0  # seconds the upstream holds each answer


def config(mocks: dict[str, Any]) -> GatewayConfig:
    price = {"input": 1, "output": 1}  # USD per million tokens: one micro-USD per token
    return GatewayConfig.model_validate(
        {
            "providers": {
                "mock": {
                    "type": "openai",
                    "api_base": f"{mocks['openai'].url}/v1",
                    "api_key": "sk-test-openai",
                }
            },
            "models": {
                "priced": {
                    "deployments": [{"provider": "mock", "model": "gpt-4o-mini", "price": price}]
                }
            },
        }
    )


@dataclass
class Team:
    """Gateways (one, or two sharing PostgreSQL and Redis), a workspace with an admin and
    four members, and the admin's token."""

    apis: list[AdminAPI]
    workspace_id: str
    admin: str
    members: list[tuple[str, str]]  # (user id, access token)

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None):
        response = await self.apis[0].http.request(
            method,
            f"/api/workspaces/{self.workspace_id}{path}",
            headers=bearer(token or self.admin),
            json=body,
        )
        assert response.status_code in (200, 201, 204), response.text
        return response.json()["data"] if response.status_code != 204 else None

    async def key(self, token: str | None = None, **fields: Any) -> str:
        made = await self.call("POST", "/keys", {"name": "k", **fields}, token)
        return made["key"]

    async def fire(self, keys: list[str], count: int) -> list[httpx.Response]:
        async def one(i: int) -> httpx.Response:
            http = self.apis[i % len(self.apis)].http
            return await http.post(
                "/v1/chat/completions", json=CHAT, headers=bearer(keys[i % len(keys)])
            )

        return await asyncio.gather(*(one(i) for i in range(count)))


@pytest.fixture(params=["sqlite", "postgresql"])
async def team(request, mocks, tmp_path) -> AsyncIterator[Team]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
            apis = [await stack.enter_async_context(admin_api(url, tmp_path, config(mocks)))]
        else:
            url = request.getfixturevalue("postgres").create_database(
                f"teams_{uuid.uuid4().hex[:12]}"
            )
            redis = request.getfixturevalue("redis_server")
            redis.flush()
            shared = {"redis_url": redis.url, "secret_key": "s" * 40}
            apis = [
                await stack.enter_async_context(
                    admin_api(url, tmp_path / name, config(mocks), **shared)
                )
                for name in ("a", "b")
            ]
            for api in apis:
                await generous(api, redis.url)
        plane = apis[0].plane
        admin = await make_user(plane)
        people = [await make_user(plane) for _ in range(4)]
        workspace_id = await make_workspace(
            plane, {admin: "admin"} | dict.fromkeys(people, "member")
        )
        tokens = [(await sign_in(plane, uid)).access_token for uid in [admin, *people]]
        yield Team(apis, workspace_id, tokens[0], list(zip(people, tokens[1:], strict=True)))


async def generous(api: AdminAPI, url: str) -> None:
    """Counters in Redis with a generous deadline, as in tests/limits: this test is about
    exactness with both instances on one busy event loop, not about Redis being slow."""
    engine = api.app.gateway.limits
    slow = engine.guard.primary
    engine.guard.primary = engine.backend = RedisBackend(url, deadline=5.0, socket_timeout=5.0)
    await engine.guard.primary.start()
    await slow.aclose()


async def worst_case(team: Team) -> int:
    """A chat request's token estimate (= its worst-case cost in micro-USD), from a probe
    team whose one-token daily quota refuses it."""
    probe = await team.call("POST", "/teams", {"name": "probe", "limits": {"daily_tokens": 1}})
    key = await team.key(team_id=probe["id"])
    (refused,) = await team.fire([key], 1)
    assert refused.status_code == 429, refused.text
    message = refused.json()["error"]["message"]
    assert "this team" in message
    return int(re.search(r"may use up to (\d+)", message)[1])


def tally(responses: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
    return counts


async def test_a_team_budget_admits_exactly_what_fits(team, mocks):
    n = await worst_case(team)
    made = await team.call(
        "POST", "/teams", {"name": "research", "limits": {"budget_usd": 30 * n / 1_000_000}}
    )
    keys = []
    for user_id, token in team.members:
        await team.call("PUT", f"/teams/{made['id']}/members/{user_id}")
        keys.append(await team.key(token))  # counts to the team through its owner
    keys.append(await team.key(service=True, team_id=made["id"]))  # in the team itself
    mocks["openai"].default_fault = Fault(delay=HOLD)
    try:
        responses = await team.fire(keys, 200)
    finally:
        mocks["openai"].default_fault = None
    assert tally(responses) == {200: 30, 402: 170}
    refusal = next(r for r in responses if r.status_code == 402).json()["error"]
    assert refusal["code"] == "budget_exceeded" and "this team" in refusal["message"]
    # The requests are grouped by team in the analytics once the request log is written.
    for _ in range(150):
        usage = await team.call("GET", "/usage/breakdown?group_by=team")
        if {row["group"]: row["requests"] for row in usage}.get(made["id"], 0) >= 200:
            break
        await asyncio.sleep(0.1)
    assert {row["group"]: row["requests"] for row in usage}[made["id"]] == 200


async def test_user_budgets_admit_exactly_what_each_fits(team, mocks):
    n = await worst_case(team)
    made = await team.call("POST", "/teams", {"name": "sales", "limits": {"budget_usd": 1.0}})
    (first, first_token), (second, second_token) = team.members[:2]
    keys = []
    for user_id, token, fits in ((first, first_token, 5), (second, second_token, 8)):
        await team.call("PUT", f"/teams/{made['id']}/members/{user_id}")
        await team.call(
            "PUT", f"/members/{user_id}/limits", {"limits": {"budget_usd": fits * n / 1e6}}
        )
        keys.append(await team.key(token))
    mocks["openai"].default_fault = Fault(delay=HOLD)
    try:
        responses = await team.fire(keys, 200)
    finally:
        mocks["openai"].default_fault = None
    by_key: dict[str, dict[int, int]] = {}
    for i, response in enumerate(responses):
        by_key.setdefault(keys[i % 2], {}).setdefault(response.status_code, 0)
        by_key[keys[i % 2]][response.status_code] += 1
    assert by_key == {keys[0]: {200: 5, 402: 95}, keys[1]: {200: 8, 402: 92}}
    refusal = next(r for r in responses if r.status_code == 402).json()["error"]
    assert "this user" in refusal["message"]
