"""The routing engine end to end: a real gateway process, two fault-injecting OpenAI mocks,
the official openai SDK as client. Every test uses its own upstream model names, so each
has fresh deployments (health, breakers and caps are keyed by provider/model)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.mocks.openai_mock import OpenAIMock
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY, GatewayProcess

USER = [{"role": "user", "content": "route me"}]
FAST = {"connect": 1, "first_byte": 0.5, "read": 0.5, "total": 5}
ROUTING = {
    "request_timeout": 10,
    "retry": {
        "attempts_per_deployment": 2,
        "base_delay": 0.01,
        "max_delay": 0.05,
        "max_retry_after": 1.0,
    },
    "circuit_breaker": {"consecutive_failures": 2, "cooldown": 1.0, "min_requests": 1000},
    "health": {"exploration_rate": 0.05},
}


def pair(model: str, **spec: Any) -> dict[str, Any]:
    """An alias over mock A (first) and mock B."""
    deployments = [{"provider": "pa", "model": model}, {"provider": "pb", "model": model}]
    return {"deployments": deployments, **spec}


def one(provider: str, model: str, **spec: Any) -> dict[str, Any]:
    return {"deployments": [{"provider": provider, "model": model}], **spec}


def config(a: OpenAIMock, b: OpenAIMock) -> dict[str, Any]:
    provider = {"type": "openai", "api_key": "${TEST_OPENAI_KEY}", "timeouts": FAST}
    return {
        "routing": ROUTING,
        "providers": {
            "pa": {**provider, "api_base": f"{a.url}/v1"},
            "pb": {**provider, "api_base": f"{b.url}/v1"},
        },
        "models": {
            "fo-500": pair("fo-500"),
            "fo-reset": pair("fo-reset"),
            "fo-hang": pair("fo-hang"),
            "fo-badjson": pair("fo-badjson"),
            "retry-429": one("pa", "retry-429"),
            "limited-429": one("pa", "limited-429"),
            "stream-slow": pair("stream-slow"),
            "stream-stall": one("pa", "stream-stall"),
            "stream-cut": pair("stream-cut"),
            "chain-first": one("pa", "chain-first", fallbacks=["chain-second"]),
            "chain-second": one("pb", "chain-second"),
            "cw-small": one("pa", "cw-small", context_window_fallbacks=["cw-large"]),
            "cw-large": one("pb", "cw-large"),
            "cp-strict": one("pa", "cp-strict", content_policy_fallbacks=["cp-lenient"]),
            "cp-lenient": one("pb", "cp-lenient"),
            "priced": {
                "deployments": [
                    {"provider": "pa", "model": "gpt-4o"},
                    {"provider": "pb", "model": "gpt-4o-mini"},
                ]
            },
            "breaker": pair("breaker"),
            "capped": {
                "deployments": [
                    {"provider": "pa", "model": "capped", "rpm": 2},
                    {"provider": "pb", "model": "capped", "rpm": 1},
                ]
            },
            "parallel": {
                "deployments": [
                    {"provider": "pa", "model": "parallel", "max_parallel": 1},
                    {"provider": "pb", "model": "parallel", "max_parallel": 1},
                ]
            },
            "weighted": {
                "strategy": "weighted",
                "deployments": [
                    {"provider": "pa", "model": "weighted", "weight": 3},
                    {"provider": "pb", "model": "weighted", "weight": 1},
                ],
            },
            "fastest": pair("fastest", strategy="fastest"),
        },
    }


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIMock, OpenAIMock]]:
    a, b = OpenAIMock().start(), OpenAIMock().start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="module")
def routed(upstreams, tmp_path_factory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        config(*upstreams),
        tmp_path_factory.mktemp("routing"),
        env={"TEST_OPENAI_KEY": "sk-test-openai"},
    ).start()
    yield process
    process.stop()


@pytest.fixture
def ab(upstreams) -> tuple[OpenAIMock, OpenAIMock]:
    """Mocks A and B, reset."""
    for mock in upstreams:
        mock.reset()
    return upstreams


@pytest.fixture
def sdk(routed) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{routed.url}/v1", api_key=MASTER_KEY, max_retries=0)


def chat(sdk: openai.OpenAI, model: str, **kw: Any) -> Any:
    return sdk.chat.completions.with_raw_response.create(model=model, messages=USER, **kw)


def deployments(gw: GatewayProcess) -> dict[str, Any]:
    operator = {"authorization": f"Bearer {MASTER_KEY}"}  # the detail is for operators
    ready = httpx.get(f"{gw.url}/health/ready", headers=operator).json()
    return ready["checks"]["routing"]["deployments"]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


# -- failures before an answer: fail over ---------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "fault"),
    [
        ("fo-500", Fault(status=500, body={"error": {"message": "boom", "type": "server_error"}})),
        ("fo-reset", Fault(reset=True)),
        ("fo-hang", Fault(delay=3.0)),  # no first byte within 0.5 s
        ("fo-badjson", Fault(status=200, body="{not json")),
    ],
)
def test_upstream_faults_fail_over_to_the_next_deployment(sdk, ab, alias, fault):
    a, b = ab
    a.default_fault = fault
    started = time.monotonic()
    raw = chat(sdk, alias)
    assert raw.parse().choices[0].message.content == "Echo: route me"
    assert time.monotonic() - started < 2.0
    assert raw.headers["x-perpetuo-provider"] == "pb"
    assert raw.headers["x-perpetuo-attempts"] == "2"
    assert raw.headers["x-perpetuo-fallback"] == "true"
    # (A reset on a pooled connection is retried once on a fresh one by the transport.)
    assert a.requests and len(b.requests) == 1


def test_429_retry_after_is_honored_then_the_same_deployment_serves(sdk, ab):
    a, _ = ab
    limited = {"error": {"message": "Rate limit reached", "type": "requests", "code": None}}
    a.fail_next(Fault(status=429, body=limited, headers={"retry-after-ms": "300"}))
    started = time.monotonic()
    raw = chat(sdk, "retry-429")
    assert time.monotonic() - started >= 0.3
    assert raw.headers["x-perpetuo-attempts"] == "2"
    assert raw.headers["x-perpetuo-fallback"] == "false"
    # A Retry-After longer than routing.retry.max_retry_after goes to the client at once.
    a.fail_next(Fault(status=429, body=limited, headers={"retry-after": "30"}))
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as exc:
        chat(sdk, "limited-429")
    assert time.monotonic() - started < 1.0
    assert exc.value.response.headers["retry-after"] == "30"


# -- streams ----------------------------------------------------------------------------------


def test_stream_that_is_slow_to_start_falls_over_and_a_slow_one_completes(sdk, ab, routed):
    a, b = ab
    a.fail_next(Fault(delay=1.0))
    b.fail_next(Fault(event_delay=0.05))  # slow between events, but within the read timeout
    with sdk.chat.completions.with_streaming_response.create(
        model="stream-slow", messages=USER, stream=True
    ) as response:
        assert response.headers["x-perpetuo-provider"] == "pb"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text == "Echo: route me"
    detail = deployments(routed)
    assert detail["pb/stream-slow"]["ttft_ms"] is not None  # TTFT feeds `fastest`
    assert detail["pb/stream-slow"]["in_flight"] == 0  # released when the stream ended
    assert detail["pa/stream-slow"]["error_rate"] == 1.0


@pytest.mark.parametrize(
    ("alias", "fault"),
    [("stream-cut", Fault(cut_after=3)), ("stream-stall", Fault(event_delay=0.8))],
)
def test_stream_failing_after_the_first_chunk_ends_with_an_error_event(
    sdk, ab, routed, alias, fault
):
    a, b = ab
    a.fail_next(fault)
    received = []
    stream = sdk.chat.completions.create(model=alias, messages=USER, stream=True)
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"
    # It names the deployment that failed, and how (the first one of the alias, `pa`).
    message = exc.value.message
    assert message.startswith("pa: ") and ("connection" in message or "in time" in message)
    assert not b.requests  # committed to the first deployment: no fallback mid-stream
    # The SDK raises on the error event; the gateway records the end right after sending it.
    deadline = time.monotonic() + 2
    while (view := deployments(routed)[f"pa/{alias}"])["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert view["error_rate"] == 1.0 and view["in_flight"] == 0


# -- fallback chains --------------------------------------------------------------------------


def test_fallback_alias_serves_when_every_deployment_fails(sdk, ab):
    a, _ = ab
    a.default_fault = Fault(status=503, body={"error": {"message": "overloaded"}})
    raw = chat(sdk, "chain-first")
    assert raw.headers["x-perpetuo-model"] == "chain-second"
    assert raw.headers["x-perpetuo-provider"] == "pb"
    assert raw.headers["x-perpetuo-fallback"] == "true"


def test_context_window_and_content_policy_fallbacks(sdk, ab):
    a, b = ab
    a.fail_next(Fault(status=400, body=error_body("context_length_exceeded", "too long")))
    raw = chat(sdk, "cw-small")
    assert raw.headers["x-perpetuo-model"] == "cw-large"
    a.fail_next(Fault(status=400, body=error_body("content_filter", "filtered")))
    raw = chat(sdk, "cp-strict")
    assert raw.headers["x-perpetuo-model"] == "cp-lenient"
    assert [r.body["model"] for r in b.requests] == ["cw-large", "cp-lenient"]


# -- the route header -------------------------------------------------------------------------


def test_route_header_overrides_the_alias_strategy(sdk, ab):
    assert chat(sdk, "priced").headers["x-perpetuo-model"] == "gpt-4o"
    raw = chat(sdk, "priced", extra_headers={"X-Perpetuo-Route": "cheapest"})
    assert raw.headers["x-perpetuo-model"] == "gpt-4o-mini"
    with pytest.raises(openai.BadRequestError) as exc:
        chat(sdk, "priced", extra_headers={"X-Perpetuo-Route": "random"})
    assert exc.value.param == "X-Perpetuo-Route" and exc.value.code == "invalid_parameter"
    assert "default, priority, weighted, fastest, cheapest, reliable, least-busy" in (
        exc.value.message
    )


# -- circuit breaker --------------------------------------------------------------------------


def test_breaker_opens_skips_and_recovers_through_a_half_open_probe(sdk, ab, routed):
    a, _ = ab
    a.default_fault = Fault(status=500, body={"error": {"message": "boom"}})
    for _ in range(2):  # two consecutive failures open it
        assert chat(sdk, "breaker").headers["x-perpetuo-provider"] == "pb"
    opened = time.monotonic()
    assert deployments(routed)["pa/breaker"]["state"] == "open"
    a.default_fault = None
    raw = chat(sdk, "breaker")
    assert raw.headers["x-perpetuo-attempts"] == "1" and raw.headers["x-perpetuo-provider"] == "pb"
    assert len(a.requests) == 2  # skipped while open
    time.sleep(max(0.0, 1.05 - (time.monotonic() - opened)))
    raw = chat(sdk, "breaker")  # the half-open probe, which succeeds
    assert raw.headers["x-perpetuo-provider"] == "pa" and len(a.requests) == 3
    assert deployments(routed)["pa/breaker"]["state"] == "closed"


# -- capacity caps ----------------------------------------------------------------------------


def test_rpm_caps_move_traffic_then_refuse_with_retry_after(sdk, ab):
    providers = [chat(sdk, "capped").headers["x-perpetuo-provider"] for _ in range(3)]
    assert providers == ["pa", "pa", "pb"]
    with pytest.raises(openai.RateLimitError) as exc:
        chat(sdk, "capped")
    assert exc.value.code == "deployment_capacity_exceeded"
    assert 1 <= int(exc.value.response.headers["retry-after"]) <= 60


async def test_max_parallel_caps_concurrent_requests(routed, ab):
    a, b = ab
    a.default_fault = b.default_fault = Fault(delay=0.3)
    client = openai.AsyncOpenAI(base_url=f"{routed.url}/v1", api_key=MASTER_KEY, max_retries=0)
    results = await asyncio.gather(
        *(client.chat.completions.create(model="parallel", messages=USER) for _ in range(3)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 1 and refused[0].code == "deployment_capacity_exceeded"
    assert len(a.requests) == 1 and len(b.requests) == 1
    await client.close()


# -- statistics over real requests ------------------------------------------------------------


def test_weighted_split_over_real_requests(sdk, ab):
    a, b = ab
    for _ in range(200):
        chat(sdk, "weighted")
    assert abs(len(a.requests) - 150) <= 10 and abs(len(b.requests) - 50) <= 10


def test_fastest_converges_to_the_faster_upstream(sdk, ab):
    a, _ = ab
    a.default_fault = Fault(delay=0.06)
    served = [chat(sdk, "fastest").headers["x-perpetuo-provider"] for _ in range(40)]
    late = Counter(served[10:])
    assert late["pb"] >= 25, served
