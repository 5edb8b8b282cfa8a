"""Deployment alerts driven by real upstream failures: a mock provider's scripted faults
open a circuit breaker or fail the active health checks, and recovery clears the alert."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator

import pytest

from perpetuo.auth.credential_crypto import new_key_spec
from perpetuo.config import GatewayConfig
from perpetuo.store.timeutil import utcnow
from tests.control.alerts.conftest import make_channel, make_rule, quiet
from tests.mocks.openai_mock import OpenAIMock
from tests.mocks.server import Fault
from tests.support.admin_api import MASTER, AdminAPI, admin_api

MINUTE = dt.timedelta(minutes=1)
PLATFORM = "/api/admin"
BROKEN = Fault(status=500, body={"error": {"message": "boom", "type": "server_error"}})


@pytest.fixture
def upstream() -> Iterator[OpenAIMock]:
    mock = OpenAIMock().start()
    yield mock
    mock.stop()


@pytest.fixture
async def api(tmp_path, monkeypatch, upstream) -> AsyncIterator[AdminAPI]:
    monkeypatch.setenv("PERPETUO_ENCRYPTION_KEYS", new_key_spec("k1"))
    config = GatewayConfig.model_validate(
        {
            "providers": {
                "up": {
                    "type": "openai",
                    "api_base": f"{upstream.url}/v1",
                    "api_key": "sk-test-openai",
                    "health_check": {"interval": 3600, "probe": "chat"},
                }
            },
            "models": {"m": {"deployments": [{"provider": "up", "model": "gpt-4o-mini"}]}},
            "routing": {
                "max_attempts": 1,
                "circuit_breaker": {"consecutive_failures": 2, "cooldown": 0.3},
            },
        }
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    async with admin_api(url, tmp_path, config) as api:
        await quiet(api)
        yield api


async def _chat(api: AdminAPI) -> int:
    response = await api.http.post(
        "/v1/chat/completions",
        headers=MASTER,
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    )
    return response.status_code


async def _deliver(api: AdminAPI) -> None:
    while await api.app.gateway.alerts.deliver_due():
        pass


async def test_an_open_circuit_fires_once_and_recovers_when_it_closes(api, upstream, receiver):
    service = api.app.gateway.alerts
    channel = await make_channel(
        api, PLATFORM, {"name": "ops", "kind": "webhook", "url": receiver.url}
    )
    await make_rule(
        api,
        PLATFORM,
        {
            "name": "circuits",
            "kind": "deployment_degraded",
            "params": {"condition": "circuit_open"},
            "channel_ids": [channel["id"]],
        },
    )
    now = utcnow()
    assert await _chat(api) == 200
    assert await service.evaluate_once(now) == []
    upstream.fail_next(BROKEN, BROKEN)
    assert [await _chat(api), await _chat(api)] == [502, 502]
    assert len(await service.evaluate_once(now + MINUTE)) == 1
    assert await service.evaluate_once(now + 2 * MINUTE) == []  # still open: not again
    await asyncio.sleep(0.35)  # the cooldown: the next request is the probe, and succeeds
    assert await _chat(api) == 200
    assert await service.evaluate_once(now + 3 * MINUTE) == []  # within the grace period
    assert len(await service.evaluate_once(now + 6 * MINUTE)) == 1
    await _deliver(api)
    bodies = receiver.bodies()
    assert [(b["type"], b["alert"]["subject"]) for b in bodies] == [
        ("alert.firing", "up/gpt-4o-mini"),
        ("alert.resolved", "up/gpt-4o-mini"),
    ]
    assert bodies[0]["alert"]["details"]["circuit"] == "open"


async def test_failing_health_checks_fire_and_passing_ones_clear(api, upstream, receiver):
    service = api.app.gateway.alerts
    gateway = api.app.gateway
    channel = await make_channel(
        api, PLATFORM, {"name": "ops", "kind": "webhook", "url": receiver.url}
    )
    await make_rule(
        api,
        PLATFORM,
        {
            "name": "probes",
            "kind": "health_check_failing",
            "params": {"consecutive": 2},
            "channel_ids": [channel["id"]],
        },
    )
    checker = gateway.router.checker
    deployments = list(gateway.table.aliases["m"].deployments)
    settings = deployments[0].health_check
    now = utcnow()
    upstream.default_fault = BROKEN
    await checker.probe(deployments, settings)
    assert await service.evaluate_once(now) == []  # one failed round is not enough
    await checker.probe(deployments, settings)
    assert len(await service.evaluate_once(now + MINUTE)) == 1
    upstream.default_fault = None
    await checker.probe(deployments, settings)
    assert checker.failing == {}
    assert len(await service.evaluate_once(now + 5 * MINUTE)) == 1
    await _deliver(api)
    bodies = receiver.bodies()
    assert [b["type"] for b in bodies] == ["alert.firing", "alert.resolved"]
    assert "failed 2 times in a row" in bodies[0]["alert"]["summary"]


async def test_a_workspace_cannot_watch_the_platforms_health_checks(api):
    from tests.support.people import make_workspace

    ws = await make_workspace(api.plane, {})
    response = await api.http.post(
        f"/api/workspaces/{ws}/alert-rules",
        headers=MASTER,
        json={"name": "p", "kind": "health_check_failing"},
    )
    assert response.status_code == 422 and response.json()["error"]["param"] == "kind"
    bad = await api.http.post(
        f"/api/workspaces/{ws}/alert-rules",
        headers=MASTER,
        json={"name": "p", "kind": "deployment_degraded", "params": {"condition": "error_rate"}},
    )
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "params"
    assert "threshold" in bad.json()["error"]["message"]
