"""Readiness and active health checks end to end: a dedicated gateway and OpenAI mock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

from tests.mocks.openai_mock import OpenAIMock
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY, GatewayProcess


class ProbedMock(OpenAIMock):
    """An OpenAI mock whose model listing (the health-check probe) also obeys faults."""

    async def models(self, request: web.Request) -> web.StreamResponse:
        answer = await self.apply_fault(request, self.take_fault())
        if answer is not None:
            await self.record(request)
            return answer
        return await super().models(request)

    def probes(self) -> int:
        return sum(1 for r in self.requests if r.path == "/v1/models")


@pytest.fixture(scope="module")
def probed() -> Iterator[ProbedMock]:
    mock = ProbedMock()
    mock.start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def checked(probed, tmp_path_factory) -> Iterator[GatewayProcess]:
    base = {"type": "openai", "api_base": f"{probed.url}/v1"}
    config = {
        "routing": {"circuit_breaker": {"consecutive_failures": 2, "cooldown": 30}},
        "providers": {
            "probed": {
                **base,
                "api_key": "sk-test-openai",
                "health_check": {"interval": 0.1, "timeout": 1},
            },
            "badkey": {**base, "api_key": "sk-wrong-key-0000"},
        },
        "models": {
            "watched": {"deployments": [{"provider": "probed", "model": "watched"}]},
            "dead": {"deployments": [{"provider": "badkey", "model": "dead"}]},
        },
    }
    process = GatewayProcess(config, tmp_path_factory.mktemp("health")).start()
    yield process
    process.stop()


def ready(gw: GatewayProcess) -> tuple[int, dict[str, Any]]:
    operator = {"authorization": f"Bearer {MASTER_KEY}"}  # the detail is for operators
    response = httpx.get(f"{gw.url}/health/ready", headers=operator)
    return response.status_code, response.json()["checks"]["routing"]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_ready_turns_503_with_detail_when_an_alias_has_every_circuit_open(checked):
    status, routing = ready(checked)
    assert status == 200 and routing["unavailable"] == []
    assert routing["deployments"]["badkey/dead"]["state"] == "closed"
    sdk = openai.OpenAI(base_url=f"{checked.url}/v1", api_key=MASTER_KEY, max_retries=0)
    with pytest.raises(openai.APIStatusError) as exc:
        sdk.chat.completions.create(model="dead", messages=[{"role": "user", "content": "x"}])
    assert exc.value.code == "upstream_authentication_failed"
    status, routing = ready(checked)  # a rejected credential opens the circuit at once
    assert status == 503 and routing["unavailable"] == ["dead"]
    view = routing["deployments"]["badkey/dead"]
    assert view["state"] == "open" and view["error_rate"] == 1.0 and view["in_flight"] == 0
    assert 0 < view["reopens_in_s"] <= 30


def test_failing_probes_open_the_circuit_and_a_passing_one_lets_traffic_back(checked, probed):
    def view() -> dict[str, Any]:
        return ready(checked)[1]["deployments"]["probed/watched"]

    wait_for(lambda: probed.probes() >= 2)  # probing on its own, every 0.1 s
    assert view()["state"] == "closed"
    probed.default_fault = Fault(status=500, body={"error": {"message": "down"}})
    wait_for(lambda: view()["state"] == "open")  # no client traffic needed
    probed.default_fault = None
    # The cooldown is 30 s, but a passing probe ends it: the next request is the half-open
    # probe, and it closes the circuit.
    wait_for(lambda: view()["reopens_in_s"] is None)
    sdk = openai.OpenAI(base_url=f"{checked.url}/v1", api_key=MASTER_KEY, max_retries=0)
    sdk.chat.completions.create(model="watched", messages=[{"role": "user", "content": "x"}])
    assert view()["state"] == "closed"
