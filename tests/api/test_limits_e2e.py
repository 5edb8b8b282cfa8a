"""Limits and budgets through real gateway processes: exact admission under concurrency on
one instance and across two sharing Redis, headers and refusals clients can act on, and no
budget overspend."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from tests.conftest import full_config
from tests.support.gateway import MASTER_KEY, GatewayProcess

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "hello"}],
    "max_tokens": 20,
}


def create_key(gw: GatewayProcess, **fields) -> dict:
    response = httpx.post(
        f"{gw.url}/api/workspaces/ws_default/keys",
        headers=ADMIN,
        json={"name": "limited", **fields},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def fire(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    """`count` requests at once, spread over `urls`."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def one(i: int) -> httpx.Response:
            return await http.post(
                f"{urls[i % len(urls)]}/v1/chat/completions",
                json=CHAT,
                headers={"authorization": f"Bearer {key}"},
            )

        return await asyncio.gather(*(one(i) for i in range(count)))


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = full_config(mocks)
    with GatewayProcess(config, tmp_path_factory.mktemp("limits"), env=env) as process:
        yield process


def test_500_concurrent_against_100_rpm_admits_exactly_100(gw):
    key = create_key(gw, limits={"rpm": 100})["key"]
    responses = asyncio.run(fire([gw.url], key, 500))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 100 and codes.count(429) == 400
    refused = next(r for r in responses if r.status_code == 429)
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_requests" and "100" in error["message"]
    assert int(refused.headers["retry-after"]) >= 1
    admitted = next(r for r in responses if r.status_code == 200)
    assert admitted.headers["x-ratelimit-limit-requests"] == "100"
    assert 0 <= int(admitted.headers["x-ratelimit-remaining-requests"]) < 100
    assert admitted.headers["x-ratelimit-reset-requests"]


def test_the_sdk_sees_rate_limit_errors_and_headers(gw):
    key = create_key(gw, limits={"rpm": 1, "tpm": 100_000})["key"]
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(**CHAT)
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(raw.headers["x-ratelimit-limit-tokens"]) == 100_000
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(**CHAT)
    assert exc.value.code == "rate_limit_requests"


def test_concurrency_cap(gw, mocks):
    from tests.mocks.server import Fault

    key = create_key(gw, limits={"max_parallel": 3})["key"]
    mocks["openai"].default_fault = Fault(delay=0.5)
    try:
        responses = asyncio.run(fire([gw.url], key, 10))
    finally:
        mocks["openai"].default_fault = None
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 3 and codes.count(429) == 7
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 429} == {
        "concurrency_limit"
    }
    assert asyncio.run(fire([gw.url], key, 1))[0].status_code == 200  # slots were released


def test_budget_is_never_overspent(gw):
    # Each request may cost at most max_tokens of output plus the prompt; the budget fits a
    # handful of worst cases, and many run at once.
    key = create_key(gw, limits={"budget_usd": 0.0002, "budget_period": "daily"})
    responses = asyncio.run(fire([gw.url], key["key"], 60))
    codes = [r.status_code for r in responses]
    assert 0 < codes.count(200) < 60 and set(codes) <= {200, 402}
    refusal = next(r for r in responses if r.status_code == 402).json()["error"]
    assert refusal["code"] == "budget_exceeded"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logs = httpx.get(
            f"{gw.url}/api/workspaces/ws_default/logs",
            headers=ADMIN,
            params={"key_id": key["id"], "limit": 200},
        ).json()["data"]
        if len(logs) == 60:
            break
        time.sleep(0.1)
    spent = sum(entry["cost_usd"] for entry in logs)
    assert 0 < spent <= 0.0002


def test_two_instances_sharing_redis_admit_exactly_100(mocks, postgres, redis_server, tmp_path):
    config, env = full_config(mocks)
    shared = {
        **env,
        "PERPETUO_DATABASE_URL": postgres.create_database("limits_two"),
        "PERPETUO_SECRET_KEY": "s" * 40,
        "PERPETUO_REDIS_URL": redis_server.url,
    }
    a = GatewayProcess(config, tmp_path / "a", env=shared).start()
    b = GatewayProcess(config, tmp_path / "b", env=shared).start()
    try:
        key = create_key(a, limits={"rpm": 100})["key"]
        responses = asyncio.run(fire([a.url, b.url], key, 500))
        codes = [r.status_code for r in responses]
        assert codes.count(200) == 100 and codes.count(429) == 400
    finally:
        a.stop()
        b.stop()
