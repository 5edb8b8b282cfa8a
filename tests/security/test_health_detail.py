"""Readiness tells anyone whether the gateway is ready, and only operators (master key,
metrics token, a platform administrator's access token) what it runs: aliases, deployments,
breaker states, latencies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import full_config
from tests.support.gateway import MASTER_KEY, GatewayProcess, free_port

METRICS_TOKEN = "metrics-token-0123456789"
PASSWORD = "correct horse battery 9"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def gateway(mocks, tmp_path_factory) -> Iterator[GatewayProcess]:
    config, env = full_config(mocks)
    config = {
        "providers": {"openai-main": config["providers"]["openai-main"]},
        "models": {"gpt-4o-mini": config["models"]["gpt-4o-mini"]},
    }
    env = {**env, "PERPETUO_METRICS_TOKEN": METRICS_TOKEN, "PERPETUO_SIGNUP": "open"}
    with GatewayProcess(config, tmp_path_factory.mktemp("health"), env=env) as gw:
        yield gw


def signup(gw: GatewayProcess, email: str) -> str:
    reply = httpx.post(
        f"{gw.url}/api/auth/signup", json={"email": email, "password": PASSWORD}, timeout=30
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["data"]["access_token"]


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), bearer("a.b.c")])
def test_anyone_gets_the_status_only(gateway, headers):
    reply = httpx.get(f"{gateway.url}/health/ready", headers=headers)
    assert reply.status_code == 200
    assert reply.json() == {"status": "ready"}
    assert "gpt-4o-mini" not in reply.text and "openai-main" not in reply.text


def test_operators_get_the_detail(gateway):
    admin = signup(gateway, "root@example.com")  # the first account: a platform admin
    person = signup(gateway, "pat@example.com")
    for token in (MASTER_KEY, METRICS_TOKEN, admin):
        body = httpx.get(f"{gateway.url}/health/ready", headers=bearer(token)).json()
        assert body["status"] == "ready"
        assert body["checks"]["routing"]["aliases"] == {"gpt-4o-mini": 1}
        assert "openai-main/gpt-4o-mini" in body["checks"]["routing"]["deployments"]
    ordinary = httpx.get(f"{gateway.url}/health/ready", headers=bearer(person))
    assert ordinary.json() == {"status": "ready"}


def test_not_ready_says_only_that(tmp_path):
    env = {"PERPETUO_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens
    with GatewayProcess({"models": {}}, tmp_path, env=env) as gw:
        anonymous = httpx.get(f"{gw.url}/health/ready", timeout=10)
        operator = httpx.get(f"{gw.url}/health/ready", headers=bearer(MASTER_KEY), timeout=10)
    assert anonymous.status_code == 503
    assert anonymous.json() == {"status": "not_ready"}
    assert operator.status_code == 503
    assert operator.json()["checks"]["redis"]["ok"] is False


@pytest.mark.parametrize("path", ["/health", "/health/live"])
def test_liveness_paths(gateway, path):
    reply = httpx.get(f"{gateway.url}{path}")
    assert reply.status_code == 200 and reply.json() == {"status": "ok"}
