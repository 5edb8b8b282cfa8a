"""The Gemini adapter: URLs, the `x-goog-api-key` header, chat, embeddings and images wiring.

Chat goes to `{base}/v1beta/models/{model}:generateContent`, streams to
`:streamGenerateContent?alt=sse` (each SSE `data:` is one GenerateContentResponse),
embeddings to `:batchEmbedContents`, images to Imagen's `:predict` or a Gemini image
model's `:generateContent` (images.py). `api_version` replaces `v1beta` (the default, because
the JSON Schema fields the request uses are v1beta's); an `api_base` that already ends in a
version is used as it is. A model given with a collection
(`tunedModels/x`) keeps it; a bare name gets `models/`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlencode

from perpetuo.providers import model_lists
from perpetuo.providers.base import (
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
from perpetuo.providers.gemini import images
from perpetuo.providers.gemini.errors import classify_error, error_in_body
from perpetuo.providers.gemini.request import build_body
from perpetuo.providers.gemini.response import completion, stream_chunks
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest
from perpetuo.schema.usage import token_count
from perpetuo.transport.sse import SSEEvent
from perpetuo.transport.url import URL

DEFAULT_API_VERSION = "v1beta"
API_KEY_HEADER = "x-goog-api-key"
_VERSIONED_BASE = re.compile(r"/v\d+(?:alpha|beta)?\d*$")


def model_path(model: str) -> str:
    return model if "/" in model else f"models/{model}"


class GeminiAdapter(ProviderAdapter):
    type = "gemini"
    default_api_base = "https://generativelanguage.googleapis.com"
    supports_embeddings = True
    endpoints = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.IMAGES})

    # -- requests --------------------------------------------------------------------------

    def url(self, target: Target, action: str, query: str = "") -> URL:
        return self._join(target, f"{model_path(target.model)}:{action}", query)

    def _join(self, target: Target, path: str, query: str = "") -> URL:
        """`path` under the API version, unless api_base already names one."""
        base_path = target.base_url.target.split("?", 1)[0].rstrip("/")
        version = (
            ""
            if _VERSIONED_BASE.search(base_path)
            else (f"{target.api_version or DEFAULT_API_VERSION}/")
        )
        return target.base_url.join(f"{version}{path}", query)

    def headers(self, target: Target) -> list[tuple[str, str]]:
        headers = json_headers()
        if target.api_key:
            headers.append((API_KEY_HEADER, target.api_key))
        headers.extend(target.headers)
        return headers

    def probe_request(self, target: Target) -> UpstreamCall:
        return UpstreamCall(
            self._join(target, "models", "pageSize=1"), self.headers(target), b"", "GET"
        )

    def models_request(self, target: Target, cursor: str | None = None) -> UpstreamCall:
        query = urlencode({"pageSize": 1000, **({"pageToken": cursor} if cursor else {})})
        return UpstreamCall(self._join(target, "models", query), self.headers(target), b"", "GET")

    def models_page(self, body: bytes, target: Target) -> ModelPage:
        return model_lists.gemini_page(body)

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        body = encode_json(build_body(request, extras))
        if request.is_stream:
            url = self.url(target, "streamGenerateContent", "alt=sse")
        else:
            url = self.url(target, "generateContent")
        return UpstreamCall(url, self.headers(target), body)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> UpstreamCall:
        model = model_path(target.model)
        requests = []
        for item in request.inputs_as_list():
            if not isinstance(item, str):
                raise unsupported("Gemini embeddings take text, not token ids", "input")
            entry: Json = {"model": model, "content": {"parts": [{"text": item}]}}
            if isinstance(request.dimensions, int):
                entry["outputDimensionality"] = request.dimensions
            requests.append(entry)
        body = encode_json({"requests": requests})
        return UpstreamCall(self.url(target, "batchEmbedContents"), self.headers(target), body)

    def operation_request(self, request: OperationRequest, target: Target) -> UpstreamCall:
        """Images (Imagen's predict, or a Gemini image model's generateContent: images.py)."""
        if request.endpoint is not Endpoint.IMAGES:
            return super().operation_request(request, target)
        action, body = images.request_body(request, target.model)
        return UpstreamCall(self.url(target, action), self.headers(target), encode_json(body))

    # -- responses -------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> Json:
        return completion(decode_object(body), target)

    def chat_stream(self, events: AsyncIterator[SSEEvent], target: Target) -> AsyncIterator[Json]:
        return stream_chunks(events, target)

    def embeddings_response(self, body: bytes, target: Target, request: EmbeddingRequest) -> Json:
        """OpenAI's embeddings list. The API reports no token usage for embeddings, so none is
        set here: the pipeline estimates it from the input text and marks it estimated."""
        data = decode_object(body)
        if "error" in data:
            raise error_in_body(data["error"])
        embeddings = data.get("embeddings")
        if not isinstance(embeddings, list) or len(embeddings) != len(request.inputs_as_list()):
            raise UpstreamError(
                UpstreamErrorKind.BAD_RESPONSE, "upstream sent no embedding for some inputs"
            )
        items = []
        for index, embedding in enumerate(embeddings):
            values = embedding.get("values") if isinstance(embedding, dict) else None
            if not isinstance(values, list):
                raise UpstreamError(
                    UpstreamErrorKind.BAD_RESPONSE, "upstream embedding has no values"
                )
            vector = floats_to_base64(values) if request.wants_base64 else values
            items.append({"object": "embedding", "index": index, "embedding": vector})
        result: Json = {"object": "list", "data": items, "model": target.model}
        meta = checked_usage(data.get("usageMetadata"), target)
        prompt = token_count(meta.get("promptTokenCount")) if isinstance(meta, dict) else None
        if prompt is not None:
            result["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        return result

    def operation_response(
        self, request: OperationRequest, body: bytes, content_type: str, target: Target
    ) -> OperationAnswer:
        return OperationAnswer(images.answer(request, decode_object(body), target.model, target))

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
