"""Google Vertex AI behind the OpenAI chat format: Gemini, Anthropic's Claude, embeddings.

Every model is addressed as
`{base}/{version}/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`
on `https://{location}-aiplatform.googleapis.com` (`https://aiplatform.googleapis.com` for
the `global` location), with a Google OAuth access token as bearer (google_auth).
- Gemini (`publishers/google`): `generateContent`, `streamGenerateContent?alt=sse`; the
  gemini package's translators serve it (the request and answer are the Gemini API's).
- Claude (`publishers/anthropic`, models named `claude-...`): `rawPredict` and
  `streamRawPredict` with Anthropic's Messages body, `anthropic_version: vertex-2023-10-16`
  in the body and no `model` (it is in the URL); the anthropic package's translators serve
  it. Its errors come in Anthropic's shape, Vertex's own (quota, auth) in Google's.
- Embeddings (`text-embedding-*`, `gemini-embedding-*`): `predict`, one instance per input;
  usage from each prediction's token count.
- Images: Imagen's `predict` and Gemini image models' `generateContent`, with the bodies
  the Gemini API takes (gemini/images.py).
A model given as `publisher/model` names its publisher itself (`anthropic/claude-x@v`).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import msgspec

from perpetuo.providers import model_lists
from perpetuo.providers.anthropic import AnthropicAdapter
from perpetuo.providers.anthropic.errors import http_error as anthropic_error
from perpetuo.providers.anthropic.request import translate_request
from perpetuo.providers.anthropic.response import translate_response
from perpetuo.providers.base import (
    CloudAccess,
    Json,
    ModelPage,
    OperationAnswer,
    ProviderAdapter,
    Target,
    UpstreamCall,
    checked_usage,
    decode_object,
    encode_json,
    floats_to_base64,
    json_headers,
    unsupported,
)
from perpetuo.providers.credentials import RefreshingCredentials
from perpetuo.providers.gemini import images
from perpetuo.providers.gemini.errors import classify_error
from perpetuo.providers.gemini.request import build_body
from perpetuo.providers.gemini.response import completion, stream_chunks
from perpetuo.providers.vertex.google_auth import StaticToken, resolve
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest
from perpetuo.schema.usage import token_count
from perpetuo.transport.sse import SSEEvent
from perpetuo.transport.url import URL

if TYPE_CHECKING:
    from perpetuo.config.model import ProviderConfig
    from perpetuo.transport.egress import EgressPolicy

__all__ = ["ANTHROPIC_VERSION", "VertexAdapter", "publisher_of"]

ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_API_VERSION = "v1"
LOCATION = re.compile(r"^[a-z]+(-[a-z]+\d*)*\d*$")
_HOST_LOCATION = re.compile(r"^([a-z0-9-]+)-aiplatform\.googleapis\.com$")
ANTHROPIC = AnthropicAdapter()  # its stream translation, for streamRawPredict's events


def publisher_of(model: str) -> tuple[str, str]:
    """(publisher, model id) for a deployment's model name."""
    if model.startswith("publishers/"):
        _, publisher, _, name = [*model.split("/", 3), "", ""][:4]
        return publisher, name
    if "/" in model:
        publisher, name = model.split("/", 1)
        return publisher, name
    return ("anthropic" if model.startswith("claude") else "google"), model


class VertexAdapter(ProviderAdapter):
    type = "vertex"
    requires_key = False  # Google credentials: see cloud_access
    supports_embeddings = True
    endpoints = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.IMAGES})

    # -- configuration ---------------------------------------------------------------------

    def cloud_access(self, provider: ProviderConfig, egress: EgressPolicy | None) -> CloudAccess:
        env = os.environ
        trusted = egress is None
        chain = provider.credential_chain and trusted
        location = provider.location or _location_of(provider.api_base)
        if location is None and chain:
            location = env.get("GOOGLE_CLOUD_LOCATION") or env.get("CLOUD_ML_REGION")
        if not location:
            raise ValueError("location is required for provider type vertex (us-central1, global)")
        if not LOCATION.fullmatch(location):
            raise ValueError(f"location {location!r} is not a Google Cloud location name")
        source, key, problem = resolve(
            access_token=_secret(provider.access_token),
            key_json=_secret(provider.service_account_json),
            key_file=provider.service_account_file if trusted else None,
            api_key=_secret(provider.api_key),
            chain=chain,
            egress=egress,
            env=env,
        )
        project = provider.project or key.get("project_id") or key.get("quota_project_id")
        if not project and chain:
            project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("CLOUDSDK_CORE_PROJECT")
        if not project:
            raise ValueError("project is required for provider type vertex (a project id)")
        host = "aiplatform.googleapis.com"
        endpoint = f"https://{host if location == 'global' else f'{location}-{host}'}"
        return CloudAccess(location, endpoint, source, project=str(project), problem=problem)

    # -- requests --------------------------------------------------------------------------

    def url(self, target: Target, method: str, query: str = "") -> URL:
        publisher, model = publisher_of(target.model)
        version = target.api_version or DEFAULT_API_VERSION
        path = (
            f"{version}/projects/{target.project}/locations/{target.region}"
            f"/publishers/{publisher}/models/{model}:{method}"
        )
        return target.base_url.join(path, query)

    def headers(self, target: Target) -> list[tuple[str, str]]:
        source = target.credentials
        if not isinstance(source, StaticToken | RefreshingCredentials):
            raise UpstreamError(UpstreamErrorKind.NOT_CONFIGURED, "no Google credentials")
        headers = json_headers(("authorization", f"Bearer {source.current()}"))
        headers.extend(target.headers)
        return headers

    def probe_request(self, target: Target) -> UpstreamCall:
        """The project's models in the location (free; checks the token and the project)."""
        version = target.api_version or DEFAULT_API_VERSION
        path = f"{version}/projects/{target.project}/locations/{target.region}/models"
        url = target.base_url.join(path, "pageSize=1")
        return UpstreamCall(url, self.headers(target), b"", "GET")

    def models_request(self, target: Target, cursor: str | None = None) -> UpstreamCall:
        """Google's publisher models (Gemini, Imagen, embeddings): what aliases name."""
        query = urlencode({"pageSize": 1000, **({"pageToken": cursor} if cursor else {})})
        url = target.base_url.join("v1beta1/publishers/google/models", query)
        return UpstreamCall(url, self.headers(target), b"", "GET")

    def models_page(self, body: bytes, target: Target) -> ModelPage:
        return model_lists.vertex_page(body)

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        stream = request.is_stream
        if publisher_of(target.model)[0] == "anthropic":
            body = translate_request(request, target.model, extras)
            body.pop("model")
            body["anthropic_version"] = ANTHROPIC_VERSION
            url = self.url(target, "streamRawPredict" if stream else "rawPredict")
        else:
            body = build_body(request, extras)
            if stream:
                url = self.url(target, "streamGenerateContent", "alt=sse")
            else:
                url = self.url(target, "generateContent")
        return UpstreamCall(url, self.headers(target), encode_json(body))

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> UpstreamCall:
        instances = []
        for item in request.inputs_as_list():
            if not isinstance(item, str):
                raise unsupported("Vertex AI embeddings take text, not token ids", "input")
            instances.append({"content": item})
        body: Json = {"instances": instances}
        if isinstance(request.dimensions, int):
            body["parameters"] = {"outputDimensionality": request.dimensions}
        return UpstreamCall(self.url(target, "predict"), self.headers(target), encode_json(body))

    def operation_request(self, request: OperationRequest, target: Target) -> UpstreamCall:
        if request.endpoint is not Endpoint.IMAGES or publisher_of(target.model)[0] != "google":
            return super().operation_request(request, target)
        action, body = images.request_body(request, publisher_of(target.model)[1])
        return UpstreamCall(self.url(target, action), self.headers(target), encode_json(body))

    # -- answers ---------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> Json:
        if publisher_of(target.model)[0] == "anthropic":
            return translate_response(body, target)
        return completion(decode_object(body), target)

    def chat_stream(self, events: AsyncIterator[SSEEvent], target: Target) -> AsyncIterator[Json]:
        if publisher_of(target.model)[0] == "anthropic":
            return ANTHROPIC.chat_stream(events, target)
        return stream_chunks(events, target)

    def embeddings_response(self, body: bytes, target: Target, request: EmbeddingRequest) -> Json:
        data = decode_object(body)
        predictions = data.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != len(request.inputs_as_list()):
            raise UpstreamError(
                UpstreamErrorKind.BAD_RESPONSE, "upstream sent no embedding for some inputs"
            )
        items, prompt = [], 0
        for index, prediction in enumerate(predictions):
            embedded = prediction.get("embeddings") if isinstance(prediction, dict) else None
            values = embedded.get("values") if isinstance(embedded, dict) else None
            if not isinstance(values, list):
                raise UpstreamError(
                    UpstreamErrorKind.BAD_RESPONSE, "upstream embedding has no values"
                )
            stats = checked_usage(embedded.get("statistics"), target)
            prompt += token_count(stats.get("token_count") if isinstance(stats, dict) else 0) or 0
            vector = floats_to_base64(values) if request.wants_base64 else values
            items.append({"object": "embedding", "index": index, "embedding": vector})
        result: Json = {"object": "list", "data": items, "model": target.model}
        if prompt:
            result["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        return result

    def operation_response(
        self, request: OperationRequest, body: bytes, content_type: str, target: Target
    ) -> OperationAnswer:
        model = publisher_of(target.model)[1]
        return OperationAnswer(images.answer(request, decode_object(body), model, target))

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        # Claude's own errors keep Anthropic's shape; Vertex's (auth, quota) are Google's.
        try:
            payload = msgspec.json.decode(body) if body else None
        except (msgspec.DecodeError, UnicodeDecodeError):
            payload = None
        if isinstance(payload, dict) and payload.get("type") == "error":
            return anthropic_error(status, headers, body)
        return classify_error(status, headers, body)


def _location_of(api_base: str | None) -> str | None:
    if not api_base:
        return None
    host = api_base.split("://", 1)[-1].split("/", 1)[0]
    if host == "aiplatform.googleapis.com":
        return "global"
    match = _HOST_LOCATION.match(host)
    return match.group(1) if match else None


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return (getter() or None) if getter else None
