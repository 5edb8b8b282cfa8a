"""Every client mistake gets the right 4xx with an OpenAI-style error, and the gateway
keeps serving afterwards."""

from __future__ import annotations

import httpx
import pytest

from tests.support.gateway import MASTER_KEY

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
GOOD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still alive?"}]}


def post(
    gateway, body: bytes | dict, headers: dict | None = None, path: str = "/v1/chat/completions"
):
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body}
    return httpx.post(
        f"{gateway.url}{path}", headers=AUTH if headers is None else headers, timeout=30, **kwargs
    )


def assert_error(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    assert "Traceback" not in response.text
    return error


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b"", "invalid_json", None),
        (b"[1, 2]", "invalid_json", None),
        (b'"just a string"', "invalid_json", None),
        (b'{"model": "gpt-4o-mini"}', "missing_required_parameter", "messages"),
        (
            b'{"messages": [{"role": "user", "content": "x"}]}',
            "missing_required_parameter",
            "model",
        ),
        (b'{"model": "gpt-4o-mini", "messages": []}', "invalid_parameter", "messages"),
        (b'{"model": "gpt-4o-mini", "messages": "hi"}', "invalid_parameter", "messages"),
        (
            b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}',
            "invalid_parameter",
            "model",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "x"}]}',
            "invalid_parameter",
            "messages[0].role",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"content": "x"}]}',
            "missing_required_parameter",
            "messages[0].role",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user"}]}',
            "missing_required_parameter",
            "messages[0].content",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": 7}]}',
            "invalid_parameter",
            "messages[0].content",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "tool", "content": "x"}]}',
            "missing_required_parameter",
            "messages[0].tool_call_id",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "invalid_parameter",
            "temperature",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "n": 0}',
            "invalid_parameter",
            "n",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1}',
            "invalid_parameter",
            "max_tokens",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "invalid_parameter",
            "stream",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]}',
            "invalid_parameter",
            "stop",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}',
            "missing_required_parameter",
            "tools[0].function",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}',
            "invalid_parameter",
            "response_format.type",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "frobnicate": true}',
            "unknown_parameter",
            "frobnicate",
        ),
    ],
)
def test_malformed_chat_requests(gateway, openai_mock, body, code, param):
    assert_error(post(gateway, body), 400, code, param)
    assert openai_mock.requests == []  # nothing invalid ever reaches the provider


def test_oversized_body_is_413(gateway, openai_mock):
    big = (
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        + b"a" * (17 * 1024 * 1024)
        + b'"}]}'
    )
    assert_error(post(gateway, big), 413, "request_too_large")
    assert openai_mock.requests == []


def test_auth_errors(gateway):
    assert_error(post(gateway, GOOD, headers={}), 401, "missing_api_key")
    assert_error(
        post(gateway, GOOD, headers={"authorization": "Bearer nope"}), 401, "invalid_api_key"
    )
    assert_error(
        post(gateway, GOOD, headers={"authorization": "Basic abc"}), 401, "missing_api_key"
    )
    # the key in another accepted header
    ok = post(gateway, GOOD, headers={"api-key": MASTER_KEY})
    assert ok.status_code == 200


def test_unknown_model_is_404(gateway):
    error = assert_error(
        post(gateway, {**GOOD, "model": "gpt-17"}), 404, "model_not_found", "model"
    )
    assert "gpt-17" in error["message"]


def test_routes_and_methods(gateway):
    assert_error(
        httpx.get(f"{gateway.url}/v1/chat/completions", headers=AUTH), 405, "method_not_allowed"
    )
    assert_error(httpx.get(f"{gateway.url}/v1/nothing-here", headers=AUTH), 404, "not_found")


def test_embedding_input_errors(gateway):
    path = "/v1/embeddings"
    assert_error(
        post(gateway, {"model": "text-embedding-3-small", "input": ""}, path=path),
        400,
        param="input",
    )
    assert_error(
        post(gateway, {"model": "text-embedding-3-small", "input": []}, path=path),
        400,
        param="input",
    )
    assert_error(
        post(gateway, {"model": "text-embedding-3-small", "input": [{"a": 1}]}, path=path),
        400,
        param="input",
    )
    assert_error(
        post(
            gateway,
            {"model": "text-embedding-3-small", "input": "x", "encoding_format": "hex"},
            path=path,
        ),
        400,
        param="encoding_format",
    )


def test_gateway_keeps_serving_after_bad_input(gateway):
    for junk in (b"\xff\xfe\x00", b"{" * 10000, b'{"model": null}'):
        assert post(gateway, junk).status_code == 400
    response = post(gateway, GOOD)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Echo: still alive?"
