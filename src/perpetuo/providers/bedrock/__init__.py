"""Amazon Bedrock (bedrock-runtime) behind the OpenAI chat format.

Two wire formats, chosen per deployment by its model id, never per request:
- Anthropic models (`anthropic.claude-...`, inference profiles `us.anthropic.claude-...`)
  use InvokeModel with the Anthropic Messages body (`anthropic_version:
  bedrock-2023-05-31`, the model in the URL instead of the body): the anthropic package's
  translators serve them, so thinking with signatures, forced JSON tools and cache usage
  behave exactly as on Anthropic's own API. Their streams (InvokeModelWithResponseStream)
  carry Anthropic's events inside event-stream `chunk` messages.
- Every other chat model uses Converse / ConverseStream (converse_request,
  converse_response).

Requests are signed with SigV4 (service `bedrock`) from the provider's AWS credentials
(aws_credentials), or carry a Bedrock API key (`api_key`) as a bearer token. Streams are
AWS event streams (eventstream, stream), not SSE. Embeddings: Titan and Cohere (embeddings).
Rerank: Cohere's rerank models through InvokeModel, with Cohere's v2 body (cohere/rerank.py)
and `api_version: 2`.
Images: Nova Canvas and Titan Image Generator through InvokeModel (images).
The endpoint is `https://bedrock-runtime.{region}.amazonaws.com` unless api_base says
otherwise (a VPC endpoint, a proxy).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from perpetuo.providers import model_lists
from perpetuo.providers.anthropic import AnthropicAdapter
from perpetuo.providers.anthropic.request import translate_request
from perpetuo.providers.anthropic.response import translate_response
from perpetuo.providers.base import (
    CloudAccess,
    EventSource,
    Json,
    ModelPage,
    OperationAnswer,
    ProviderAdapter,
    Target,
    UpstreamCall,
    decode_object,
    encode_json,
    json_headers,
)
from perpetuo.providers.bedrock import converse_response, embeddings, images
from perpetuo.providers.bedrock.aws_credentials import (
    RemoteAwsCredentials,
    StaticAwsCredentials,
    profile_region,
    resolve,
)
from perpetuo.providers.bedrock.converse_request import build_body
from perpetuo.providers.bedrock.errors import http_error
from perpetuo.providers.bedrock.sigv4 import sign
from perpetuo.providers.bedrock.stream import BedrockEventDecoder
from perpetuo.providers.cohere import rerank
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest
from perpetuo.transport.sse import SSEEvent
from perpetuo.transport.url import URL

if TYPE_CHECKING:
    from perpetuo.config.model import ProviderConfig
    from perpetuo.transport.egress import EgressPolicy

__all__ = ["ANTHROPIC_VERSION", "BedrockAdapter", "invokes"]

ANTHROPIC_VERSION = "bedrock-2023-05-31"
SERVICE = "bedrock"  # SigV4 signing name of bedrock-runtime
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")
_HOST_REGION = re.compile(r"^bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")
EVENT_STREAM = "application/vnd.amazon.eventstream"
# Messages-body fields Bedrock's InvokeModel does not take.
_NOT_ON_BEDROCK = ("model", "metadata")
ANTHROPIC = AnthropicAdapter()  # its stream translation, for the unwrapped events


def invokes(model: str) -> bool:
    """Is this a model served through InvokeModel in Anthropic's format (else Converse)?"""
    return "anthropic." in model.lower()


class BedrockAdapter(ProviderAdapter):
    type = "bedrock"
    requires_key = False  # AWS credentials or an API key: see cloud_access
    supports_embeddings = True
    endpoints = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.RERANK, Endpoint.IMAGES})

    # -- configuration ---------------------------------------------------------------------

    def cloud_access(self, provider: ProviderConfig, egress: EgressPolicy | None) -> CloudAccess:
        env = os.environ
        trusted = egress is None  # a tenant's provider may not use the gateway's own keys
        chain = provider.credential_chain and trusted
        region = provider.region or _region_of(provider.api_base)
        if region is None and chain:
            region = (
                env.get("AWS_REGION")
                or env.get("AWS_DEFAULT_REGION")
                or profile_region(provider.aws_profile or env.get("AWS_PROFILE") or "default", env)
            )
        if not region:
            raise ValueError("region is required for provider type bedrock (e.g. us-east-1)")
        if not REGION.fullmatch(region):
            raise ValueError(f"region {region!r} is not an AWS region name (e.g. us-east-1)")
        endpoint = f"https://bedrock-runtime.{region}.amazonaws.com"
        if provider.api_key is not None and provider.api_key.get_secret_value():
            return CloudAccess(region, endpoint)  # a Bedrock API key, sent as a bearer token
        source, problem = resolve(
            key_id=provider.aws_access_key_id,
            secret=_secret(provider.aws_secret_access_key),
            token=_secret(provider.aws_session_token),
            profile=provider.aws_profile if trusted else None,
            chain=chain,
            env=env,
        )
        return CloudAccess(region, endpoint, source, problem=problem)

    # -- requests --------------------------------------------------------------------------

    def url(self, target: Target, action: str) -> URL:
        return target.base_url.join(f"model/{quote(target.model, safe='-_.~')}/{action}")

    def signed(
        self,
        target: Target,
        url: URL,
        headers: list[tuple[str, str]],
        body: bytes,
        method: str = "POST",
    ) -> list[tuple[str, str]]:
        """The headers with this deployment's authorization: SigV4, or the API key."""
        headers.extend(target.headers)
        source = target.credentials
        if isinstance(source, StaticAwsCredentials | RemoteAwsCredentials):
            assert target.region is not None
            return sign(method, url, headers, body, source.current(), target.region, SERVICE)
        if target.api_key:
            headers.append(("authorization", f"Bearer {target.api_key}"))
            return headers
        raise UpstreamError(UpstreamErrorKind.NOT_CONFIGURED, "no AWS credentials configured")

    def probe_request(self, target: Target) -> UpstreamCall:
        """ListFoundationModels, on the control-plane host of the runtime's region (free,
        signed for the same service)."""
        return self.models_request(target, query="byOutputModality=TEXT")

    def models_request(
        self, target: Target, cursor: str | None = None, query: str = ""
    ) -> UpstreamCall:
        origin = target.base_url.origin
        host = _HOST_REGION.match(origin.host)
        base = f"https://bedrock.{host.group(1)}.amazonaws.com" if host else str(target.base_url)
        url = URL.parse(base).join("foundation-models", query)
        headers = [("accept", "application/json")]
        return UpstreamCall(url, self.signed(target, url, headers, b"", "GET"), b"", "GET")

    def models_page(self, body: bytes, target: Target) -> ModelPage:
        return model_lists.bedrock_page(body)

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        stream = request.is_stream
        if invokes(target.model):
            body = translate_request(request, target.model, extras)
            for name in (*_NOT_ON_BEDROCK, "stream"):
                body.pop(name, None)
            body["anthropic_version"] = ANTHROPIC_VERSION
            action = "invoke-with-response-stream" if stream else "invoke"
        else:
            body = build_body(request, extras)
            action = "converse-stream" if stream else "converse"
        payload = encode_json(body)
        url = self.url(target, action)
        headers = json_headers(("accept", EVENT_STREAM if stream else "application/json"))
        return UpstreamCall(url, self.signed(target, url, headers, payload), payload)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> UpstreamCall:
        payload = embeddings.request_body(request, target)
        url = self.url(target, "invoke")
        headers = json_headers(("accept", "application/json"))
        return UpstreamCall(url, self.signed(target, url, headers, payload), payload)

    def operation_request(self, request: OperationRequest, target: Target) -> UpstreamCall:
        """Rerank with Cohere's models, images with Amazon's (InvokeModel); nothing else."""
        if request.endpoint is Endpoint.IMAGES and images.family(target.model):
            payload = images.request_body(request, target.model)
        elif request.endpoint is Endpoint.RERANK and "cohere.rerank" in target.model:
            payload = encode_json({**rerank.request_body(request, None), "api_version": 2})
        else:
            return super().operation_request(request, target)
        url = self.url(target, "invoke")
        headers = json_headers(("accept", "application/json"))
        return UpstreamCall(url, self.signed(target, url, headers, payload), payload)

    # -- answers ---------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> Json:
        if invokes(target.model):
            return translate_response(body, target)
        return converse_response.completion(body, target)

    def stream_events(self, chunks: AsyncIterator[bytes], target: Target) -> EventSource:
        return BedrockEventDecoder(chunks, target.caps.max_event_bytes, invokes(target.model))

    def chat_stream(self, events: AsyncIterator[SSEEvent], target: Target) -> AsyncIterator[Json]:
        if invokes(target.model):
            return ANTHROPIC.chat_stream(events, target)  # the unwrapped events are Anthropic's
        return converse_response.stream_chunks(events, target)

    def embeddings_response(self, body: bytes, target: Target, request: EmbeddingRequest) -> Json:
        return embeddings.response(body, target, request)

    def operation_response(
        self, request: OperationRequest, body: bytes, content_type: str, target: Target
    ) -> OperationAnswer:
        if request.endpoint is Endpoint.IMAGES:
            return OperationAnswer(images.answer(decode_object(body)))
        return OperationAnswer(rerank.answer(request, decode_object(body), target.model))

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return http_error(status, headers, body)


def _region_of(api_base: str | None) -> str | None:
    """The region in a standard endpoint's host name, when api_base is one."""
    if not api_base:
        return None
    host = api_base.split("://", 1)[-1].split("/", 1)[0]
    match = _HOST_REGION.match(host)
    return match.group(1) if match else None


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else None
