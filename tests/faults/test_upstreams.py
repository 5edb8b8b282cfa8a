"""Upstream faults below HTTP, through a real gateway: slow-loris heads and bodies, a reset in
the middle of a stream, a name that does not resolve, TLS handshakes that fail or never end.

Each maps to the class docs/routing.md documents: a connect-class failure (DNS, TLS, refused)
or a timeout before anything reached the client falls over to the next deployment, and alone
answers 503 `upstream_unavailable` or 504 `upstream_timeout`; a reset after a stream started
ends it with an error event and is not retried. Every answer comes within its timeout plus a
margin, whatever the upstream does."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.upstreams import (
    RAW_MODES,
    TIMEOUTS,
    FaultyUpstream,
    fault_bases,
    fault_config,
)
from tests.mocks.openai_mock import OpenAIMock
from tests.support.gateway import MASTER_KEY, GatewayProcess
from tests.support.pki import make_pki

MARGIN = 1.5  # seconds over the timeout that ends a request, for a loaded machine
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
USER = [{"role": "user", "content": "fault"}]

# fault -> (the status and code a client sees when it is alone, the timeout that ends it)
EXPECTED = {
    "slow-headers": (504, "upstream_timeout", TIMEOUTS["first_byte"]),
    "slow-body": (504, "upstream_timeout", TIMEOUTS["total"]),
    "dns": (503, "upstream_unavailable", TIMEOUTS["connect"]),
    "not-tls": (503, "upstream_unavailable", TIMEOUTS["connect"]),
    "bad-certificate": (503, "upstream_unavailable", TIMEOUTS["connect"]),
    "tls-never-answers": (504, "upstream_timeout", TIMEOUTS["connect"]),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work: Path = tmp_path_factory.mktemp("upstream-faults")
    good = OpenAIMock().start()
    untrusted = OpenAIMock()
    untrusted.tls = make_pki(work / "pki", "untrusted").server_context()
    untrusted.start()
    raw = {mode: FaultyUpstream(mode).start() for mode in RAW_MODES}
    good_provider = {"api_base": f"{good.url}/v1", "api_key": "sk-test-openai"}
    config = fault_config(fault_bases(raw, f"{untrusted.url}/v1"), good_provider)
    gateway = GatewayProcess(config, work).start()
    yield {"gateway": gateway, "good": good, "raw": raw}
    gateway.stop()
    for server in raw.values():
        server.stop()
    good.stop()
    untrusted.stop()


def chat(gateway: GatewayProcess, model: str, **extra: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": USER, **extra},
        headers=AUTH,
        timeout=30,
    )
    return response, time.monotonic() - started


@pytest.mark.parametrize("fault", list(EXPECTED))
def test_a_fault_before_the_answer_falls_over_to_the_next_deployment(world, fault):
    response, seconds = chat(world["gateway"], f"over-{fault}")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: fault"
    assert response.headers["x-perpetuo-provider"] == "good"
    assert response.headers["x-perpetuo-attempts"] == "2"
    assert seconds < EXPECTED[fault][2] + MARGIN


@pytest.mark.parametrize("fault", list(EXPECTED))
def test_a_fault_with_nowhere_to_go_is_its_documented_error(world, fault):
    status, code, timeout = EXPECTED[fault]
    response, seconds = chat(world["gateway"], f"only-{fault}")
    assert seconds < timeout + MARGIN
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    # The message names the provider and what went wrong, in the gateway's own words.
    assert error["message"].startswith(f"{fault}: ")
    assert "sk-fault" not in response.text and "Traceback" not in response.text


def test_a_reset_after_the_stream_started_ends_it_with_an_error_event(world):
    good: OpenAIMock = world["good"]
    asked = len(good.requests)
    body = {"model": "over-reset-mid-stream", "messages": USER, "stream": True}
    events: list[str] = []
    started = time.monotonic()
    with httpx.stream(
        "POST", f"{world['gateway'].url}/v1/chat/completions", json=body, headers=AUTH, timeout=30
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(line.removeprefix("data: "))
    assert time.monotonic() - started < TIMEOUTS["read"] + MARGIN
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello"
    error = json.loads(events[-1])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "upstream_unavailable"
    assert "in the middle of its answer" in error["message"]
    assert "[DONE]" not in events
    assert len(good.requests) == asked  # committed to the first deployment: not retried


def test_a_reset_before_anything_reached_the_client_falls_over(world):
    # Without `stream`, nothing is sent until the whole answer is read: the next deployment
    # serves the request.
    response, seconds = chat(world["gateway"], "over-reset-mid-stream")
    assert response.status_code == 200, response.text
    assert response.headers["x-perpetuo-provider"] == "good"
    assert seconds < MARGIN
