"""Active health checks against a real mock upstream: what a probe round records."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web

from perpetuo.config.model import GatewayConfig, HealthCheckConfig
from perpetuo.routing.breaker import BreakerState
from perpetuo.routing.probes import HealthChecker
from perpetuo.routing.table import Deployment, RoutingTable
from perpetuo.transport.client import HTTPClient
from tests.mocks.openai_mock import OpenAIMock
from tests.mocks.server import Fault
from tests.routing.support import state_with


class ProbedMock(OpenAIMock):
    """The model listing (the probe) obeys faults too."""

    async def models(self, request: web.Request) -> web.StreamResponse:
        answer = await self.apply_fault(request, self.take_fault())
        if answer is not None:
            await self.record(request)
            return answer
        return await super().models(request)


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIMock]:
    mock = ProbedMock()
    mock.start()
    yield mock
    mock.stop()


def deployments(mock: OpenAIMock, key: str = "sk-test-openai") -> list[Deployment]:
    """One provider on the mock, two deployments (upstream models m1 and m2)."""
    config = GatewayConfig.model_validate(
        {
            "providers": {"p": {"type": "openai", "api_base": f"{mock.url}/v1", "api_key": key}},
            "models": {
                "x": {"deployments": [{"provider": "p", "model": "m1"}]},
                "y": {"deployments": [{"provider": "p", "model": "m2"}]},
            },
        }
    )
    return [d for a in RoutingTable.build(config).aliases.values() for d in a.deployments]


async def test_models_probe_is_one_call_per_provider_and_failures_count(upstream):
    upstream.reset()
    state = state_with(**{"circuit_breaker": {"consecutive_failures": 2}})
    client = HTTPClient()
    checker = HealthChecker(client, state)
    deps = deployments(upstream)
    settings = HealthCheckConfig(interval=1, timeout=1)
    await checker.probe(deps, settings)
    assert [r.path for r in upstream.requests] == ["/v1/models"]
    assert state.snapshot()["p/m1"]["requests_in_window"] == 0  # a pass is not a data point
    upstream.default_fault = Fault(status=503, body={"error": {"message": "down"}})
    await checker.probe(deps, settings)
    await checker.probe(deps, settings)
    assert all(state.health(d.id).breaker.state is BreakerState.OPEN for d in deps)
    upstream.default_fault = None
    await checker.probe(deps, settings)  # passing: the cooldown ends now
    assert all(state.health(d.id).breaker.available(state.clock()) for d in deps)
    await client.aclose()


async def test_chat_probe_asks_each_deployment_for_one_token_and_a_bad_key_trips(upstream):
    upstream.reset()
    state = state_with()
    client = HTTPClient()
    checker = HealthChecker(client, state)
    deps = deployments(upstream, key="sk-wrong-key-0000")
    await checker.probe(deps, HealthCheckConfig(probe="chat"))
    sent = [r.body for r in upstream.requests]
    assert [(b["model"], b["max_tokens"]) for b in sent] == [("m1", 1), ("m2", 1)]
    assert all(state.health(d.id).breaker.state is BreakerState.OPEN for d in deps)
    await client.aclose()
