"""Numbers an upstream reports are not believed as they come: token counts are clamped to
[0, 10^8] at the adapter boundary (the client, limits, metrics and the request log all see
the clamped figure, and the anomaly is logged once a minute per deployment), and Retry-After
is cut to `upstream_limits.max_retry_after` both for parking the deployment and for what the
client is told."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import httpx
import pytest

from perpetuo.providers.anthropic import AnthropicAdapter
from perpetuo.providers.base import Target
from perpetuo.providers.gemini import GeminiAdapter
from perpetuo.providers.upstream_errors import bounded_wait, retry_after
from perpetuo.schema.usage import MAX_TOKENS, Usage, clamp_counts
from perpetuo.transport.url import URL
from tests.mocks.hostile_mock import HUGE, HostileMock, config_for
from tests.support.gateway import MASTER_KEY, GatewayProcess

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
HELLO = [{"role": "user", "content": "hello"}]
ANOMALY = "upstream anomaly from deployment hostile/negative-usage"


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileMock]:
    mock = HostileMock().start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def gateway(hostile: HostileMock, tmp_path_factory: pytest.TempPathFactory):
    config = config_for(hostile, "ok", "negative-usage", "huge-usage", "retry-after")
    config["providers"]["patient"] = {
        **config["providers"]["hostile"],
        "upstream_limits": {"max_retry_after": 5},
    }
    config["models"]["patient-retry-after"] = {
        "deployments": [{"provider": "patient", "model": "retry-after"}]
    }
    with GatewayProcess(config, tmp_path_factory.mktemp("numbers")) as process:
        yield process


def chat(gateway: GatewayProcess, model: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": HELLO, **extra},
        headers=AUTH,
        timeout=30,
    )


def logs_of(gateway: GatewayProcess, alias: str) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        data = httpx.get(
            f"{gateway.url}/api/workspaces/ws_default/logs",
            params={"alias": alias, "limit": 50},
            headers=AUTH,
        ).json()["data"]
        if data or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


def test_negative_usage_reaches_nobody(gateway):
    for _ in range(3):
        response = chat(gateway, "negative-usage")
        assert response.status_code == 200
        usage = response.json()["usage"]
        assert usage["prompt_tokens"] == 0
        assert usage["completion_tokens"] == 3
        assert usage["total_tokens"] == 3
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    rows = logs_of(gateway, "negative-usage")
    assert len(rows) == 3  # metered and logged
    assert all(r["prompt_tokens"] == 0 and r["cost_usd"] >= 0 for r in rows)
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'perpetuo_tokens_total{alias="negative-usage"' in metrics
    assert gateway.log().count(ANOMALY) == 1  # once a minute per deployment, not per request


def test_negative_usage_in_a_stream_is_clamped(gateway):
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={
            "model": "negative-usage",
            "messages": HELLO,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        headers=AUTH,
        timeout=30,
    ) as response:
        events = [
            json.loads(line[6:])
            for line in response.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
    usage = events[-1]["usage"]
    assert usage["prompt_tokens"] == 0 and usage["total_tokens"] == 3


def test_absurd_usage_is_cut_to_the_ceiling(gateway):
    response = chat(gateway, "huge-usage")
    assert response.status_code == 200
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == MAX_TOKENS
    assert usage["completion_tokens"] == MAX_TOKENS
    assert usage["total_tokens"] == 2 * MAX_TOKENS
    (row,) = logs_of(gateway, "huge-usage")
    assert row["prompt_tokens"] == MAX_TOKENS
    assert math.isfinite(row["cost_usd"])


def test_an_absurd_retry_after_is_cut_for_clients_and_for_parking(gateway):
    response = chat(gateway, "retry-after")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "upstream_rate_limited"
    assert response.headers["retry-after"] == "60"
    ready = httpx.get(f"{gateway.url}/health/ready", headers=AUTH).json()
    parked = json.dumps(ready)
    assert "99999" not in parked and "99998" not in parked
    waits = [d["retry_after_s"] for d in _deployments(ready) if d.get("retry_after_s") is not None]
    assert waits and max(waits) <= 60


def test_a_provider_can_lower_the_retry_after_cap(gateway):
    response = chat(gateway, "patient-retry-after")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"


def _deployments(value: object) -> Iterator[dict]:
    """Every object in the readiness detail that reports a retry_after_s."""
    if isinstance(value, dict):
        if "retry_after_s" in value:
            yield value
        for inner in value.values():
            yield from _deployments(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _deployments(inner)


# -- the clamps themselves ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "99999"}, 3600.0),
        ({"retry-after": "1e999"}, 3600.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "-1"}, 0.0),
        ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, 3600.0),
        ({"retry-after": "7"}, 7.0),
    ],
)
def test_retry_after_is_parsed_into_a_sane_wait(headers, expected):
    assert retry_after(headers) == expected


def test_bounded_wait_applies_the_configured_cap():
    assert bounded_wait(99999.0, 60.0) == 60.0
    assert bounded_wait(None, 60.0) is None
    assert bounded_wait(12.5, 60.0) == 12.5


def test_usage_objects_are_clamped_in_place():
    usage = {
        "prompt_tokens": -1_000_000,
        "completion_tokens": HUGE,
        "total_tokens": -1,
        "prompt_tokens_details": {"cached_tokens": -3},
        "cost": -0.5,
    }
    assert clamp_counts(usage) == "prompt_tokens"
    assert usage == {
        "prompt_tokens": 0,
        "completion_tokens": MAX_TOKENS,
        "total_tokens": MAX_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0},
        "cost": 0.0,
    }
    assert clamp_counts({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}) is None
    read = Usage.from_openai({"prompt_tokens": -5, "completion_tokens": HUGE})
    assert read == Usage(prompt_tokens=0, completion_tokens=MAX_TOKENS)


def test_anthropic_and_gemini_usage_are_clamped():
    target = Target("p", "anthropic", "m", URL.parse("https://api.example"), "k")
    body = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": -100, "output_tokens": HUGE, "cache_read_input_tokens": -7},
    }
    usage = AnthropicAdapter().chat_response(json.dumps(body).encode(), target)["usage"]
    assert usage["prompt_tokens"] == 0 and usage["completion_tokens"] == MAX_TOKENS
    gemini = Target("g", "gemini", "gemini-x", URL.parse("https://api.example"), "k")
    body = {
        "candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": -9, "candidatesTokenCount": HUGE},
    }
    usage = GeminiAdapter().chat_response(json.dumps(body).encode(), gemini)["usage"]
    assert usage["prompt_tokens"] == 0 and usage["completion_tokens"] == MAX_TOKENS
