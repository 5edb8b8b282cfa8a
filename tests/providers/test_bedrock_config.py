"""Bedrock errors as the adapter classifies them, and what a Bedrock provider config resolves
to (region, endpoint, credential sources; never the gateway's own for a tenant)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.providers.bedrock import BedrockAdapter
from perpetuo.providers.bedrock.errors import http_error
from perpetuo.providers.registry import build_target
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.egress import EgressPolicy

K = UpstreamErrorKind
ADAPTER = BedrockAdapter()
KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}
NOVA = "amazon.nova-pro-v1:0"


def target(model: str = NOVA, **provider: Any):
    fields = {"type": "bedrock", "region": "us-east-1", **KEYS, **provider}
    return build_target(
        "bed", ProviderConfig.model_validate(fields), DeploymentConfig(provider="bed", model=model)
    )


def chat() -> ChatCompletionRequest:
    return msgspec.convert(
        {"model": "x", "messages": [{"role": "user", "content": "hi"}]}, ChatCompletionRequest
    )


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "message", "kind"),
    [
        (400, "ValidationException", "Malformed input request", K.INVALID_REQUEST),
        (400, "ValidationException", "Input is too long for requested model.", K.CONTEXT_LENGTH),
        (400, "ServiceQuotaExceededException", "quota", K.RATE_LIMIT),
        (403, "AccessDeniedException", "no access", K.AUTH),
        (403, "UnrecognizedClientException", "bad token", K.AUTH),
        (403, "ExpiredTokenException", "expired", K.AUTH),
        (404, "ResourceNotFoundException", "no model", K.NOT_FOUND),
        (408, "ModelTimeoutException", "slow", K.TIMEOUT),
        (424, "ModelErrorException", "model failed", K.SERVER),
        (429, "ThrottlingException", "slow down", K.RATE_LIMIT),
        (429, "ModelNotReadyException", "loading", K.OVERLOADED),
        (500, "InternalServerException", "oops", K.SERVER),
        (503, "ServiceUnavailableException", "busy", K.OVERLOADED),
    ],
)
def test_documented_errors(status, name, message, kind):
    headers = {"x-amzn-errortype": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    error = http_error(status, headers, json.dumps({"message": message}).encode())
    assert error.kind is kind
    assert error.message == message
    assert error.status == status


def test_error_name_from_the_body_and_unknown_answers():
    body = json.dumps({"__type": "com.amazon.coral.service#ThrottlingException", "Message": "x"})
    assert http_error(400, {}, body.encode()).kind is K.RATE_LIMIT
    assert http_error(502, {"retry-after": "3"}, b"<html>bad gateway</html>").kind is K.SERVER
    assert http_error(429, {"retry-after": "3"}, b"").retry_after == 3.0


# --- configuration ---------------------------------------------------------------------------


def test_region_endpoint_and_credential_sources():
    plain = target()
    assert plain.base_url.origin.host == "bedrock-runtime.us-east-1.amazonaws.com"
    assert plain.region == "us-east-1" and plain.key_problem is None
    from_host = target(region=None, api_base="https://bedrock-runtime.eu-west-3.amazonaws.com")
    assert from_host.region == "eu-west-3"
    missing = build_target(
        "b",
        ProviderConfig(type="bedrock", region="us-east-1"),
        DeploymentConfig(provider="b", model=NOVA),
    )
    assert missing.credentials is None
    assert "credential_chain" in (missing.key_problem or "")
    with pytest.raises(ValueError, match="region is required"):
        build_target(
            "b", ProviderConfig(type="bedrock"), DeploymentConfig(provider="b", model=NOVA)
        )
    with pytest.raises(ValueError, match="not an AWS region"):
        target(region="moon-base")


def test_a_tenants_provider_never_uses_the_gateways_own_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAGATEWAYOWN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "gateway-secret")
    config = ProviderConfig(type="bedrock", region="us-east-1", credential_chain=True)
    deployment = DeploymentConfig(provider="b", model=NOVA)
    operator = build_target("b", config, deployment)
    assert operator.key_problem is None
    tenant = build_target("b", config, deployment, EgressPolicy())
    assert tenant.credentials is None and tenant.key_problem
    with pytest.raises(UpstreamError) as exc:
        ADAPTER.chat_request(chat(), tenant, {})
    assert exc.value.kind is K.NOT_CONFIGURED


def test_provider_fields_are_checked_per_type():
    with pytest.raises(ValueError, match="region applies to provider type bedrock only"):
        ProviderConfig(type="openai", region="us-east-1")
    with pytest.raises(ValueError, match="go together"):
        ProviderConfig(type="bedrock", aws_access_key_id="AKID")
    with pytest.raises(ValueError, match="aws_session_token needs"):
        ProviderConfig(type="bedrock", aws_session_token="tok")
    with pytest.raises(ValueError, match="location applies to provider type vertex only"):
        ProviderConfig(type="bedrock", location="us-central1")
