"""The Vertex AI adapter as plain functions: addresses, bodies for Gemini and Claude, errors
in both shapes, embeddings, and what a provider config resolves to."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.providers.registry import build_target
from perpetuo.providers.vertex import VertexAdapter, publisher_of
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from tests.mocks import vertex_mock

K = UpstreamErrorKind
ADAPTER = VertexAdapter()
KEY = json.dumps(vertex_mock.service_account("https://oauth2.googleapis.com/token"))


def target(model: str = "gemini-2.5-flash", **provider: Any):
    fields = {"type": "vertex", "location": "europe-west4", "access_token": "ya29.t", **provider}
    config = ProviderConfig.model_validate(fields)
    return build_target("vx", config, DeploymentConfig(provider="vx", model=model))


def chat(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("model", "x")
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return msgspec.convert(fields, ChatCompletionRequest)


def test_addresses_for_each_publisher_and_location():
    tgt = target(project="proj-1")
    call = ADAPTER.chat_request(chat(stream=True), tgt, {})
    assert str(call.url) == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj-1/locations/"
        "europe-west4/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert dict(call.headers)["authorization"] == "Bearer ya29.t"
    claude = target("claude-sonnet-4-5@20250929", project="p", location="global")
    call = ADAPTER.chat_request(chat(), claude, {})
    assert str(call.url) == (
        "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/"
        "anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    )
    assert publisher_of("mistralai/mistral-large@2411") == ("mistralai", "mistral-large@2411")
    assert publisher_of("publishers/google/models/gemini-2.0-flash") == (
        "google",
        "gemini-2.0-flash",
    )
    beta = target(project="p", api_version="v1beta1", api_base="https://proxy.example/vertex")
    assert ADAPTER.chat_request(chat(), beta, {}).url.target.startswith(
        "/vertex/v1beta1/projects/p/"
    )


def test_claude_body_has_the_vertex_version_and_no_model():
    body = json.loads(
        ADAPTER.chat_request(
            chat(stream=True), target("claude-3-5-haiku@20241022", project="p"), {}
        ).body
    )
    assert body["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in body and body["stream"] is True and body["max_tokens"] == 4096


def test_gemini_body_is_the_gemini_apis():
    body = json.loads(ADAPTER.chat_request(chat(temperature=0.2), target(project="p"), {}).body)
    assert body == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"temperature": 0.2},
    }


def test_errors_in_googles_and_anthropics_shapes():
    google = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
    assert ADAPTER.error(429, {}, json.dumps(google).encode()).kind is K.RATE_LIMIT
    unauthenticated = {"error": {"code": 401, "message": "bad token", "status": "UNAUTHENTICATED"}}
    assert ADAPTER.error(401, {}, json.dumps(unauthenticated).encode()).kind is K.AUTH
    claude = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert ADAPTER.error(529, {}, json.dumps(claude).encode()).kind is K.OVERLOADED
    long_prompt = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "prompt is too long: 300000 tokens"},
    }
    assert ADAPTER.error(400, {}, json.dumps(long_prompt).encode()).kind is K.CONTEXT_LENGTH
    assert ADAPTER.error(502, {}, b"<html>").kind is K.SERVER


def test_embeddings_request_and_answer():
    request = msgspec.convert(
        {"model": "e", "input": ["a b", "c"], "dimensions": 4}, EmbeddingRequest
    )
    tgt = target("text-embedding-005", project="p")
    call = ADAPTER.embeddings_request(request, tgt)
    assert call.url.target.endswith("/publishers/google/models/text-embedding-005:predict")
    assert json.loads(call.body) == {
        "instances": [{"content": "a b"}, {"content": "c"}],
        "parameters": {"outputDimensionality": 4},
    }
    answer = {
        "predictions": [
            {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 2}}},
            {"embeddings": {"values": [0.3, 0.4], "statistics": {"token_count": 1}}},
        ]
    }
    result = ADAPTER.embeddings_response(json.dumps(answer).encode(), tgt, request)
    assert [d["embedding"] for d in result["data"]] == [[0.1, 0.2], [0.3, 0.4]]
    assert result["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.embeddings_response(b'{"predictions": []}', tgt, request)
    assert exc.value.kind is K.BAD_RESPONSE


def test_project_location_and_credentials_from_the_config():
    from_key = target(access_token=None, service_account_json=KEY)
    assert from_key.project == vertex_mock.PROJECT  # the key's project_id
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.chat_request(chat(), from_key, {})  # no token fetched yet
    assert exc.value.kind is K.NOT_CONFIGURED
    regional = target(
        location=None, project="p", api_base="https://us-east5-aiplatform.googleapis.com"
    )
    assert regional.region == "us-east5"
    with pytest.raises(ValueError, match="location is required"):
        target(location=None, project="p")
    with pytest.raises(ValueError, match="project is required"):
        target()
    with pytest.raises(ValueError, match="not valid JSON"):
        target(access_token=None, project="p", service_account_json="{broken")
    bare = build_target(
        "vx",
        ProviderConfig(type="vertex", location="us-central1", project="p"),
        DeploymentConfig(provider="vx", model="gemini-2.5-flash"),
    )
    assert bare.credentials is None and "credential_chain" in (bare.key_problem or "")
    with pytest.raises(ValueError, match="set one of"):
        ProviderConfig(type="vertex", access_token="t", service_account_json=KEY)
