"""Cohere's API (api.cohere.com, v2): chat (chat_request.py, chat.py), embeddings (embed.py)
and rerank (rerank.py), and the model list.

Chat goes to `/v2/chat` (streams are SSE with Cohere's own event types), embeddings to
`/v2/embed`, rerank to `/v2/rerank`, the model list to `/v1/models` (v1 is its only
version). Authentication is `Authorization: Bearer <key>`; errors are `{"id", "message"}`
objects classified by their status (errors.py).
"""

from __future__ import annotations

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
    decode_object,
    encode_json,
    json_headers,
)
from perpetuo.providers.cohere import embed, rerank
from perpetuo.providers.cohere.chat import StreamTranslator, completion
from perpetuo.providers.cohere.chat_request import translate_request
from perpetuo.providers.cohere.errors import http_error
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest
from perpetuo.transport.sse import SSEEvent

__all__ = ["CohereAdapter"]


class CohereAdapter(ProviderAdapter):
    type = "cohere"
    default_api_base = "https://api.cohere.com"
    supports_embeddings = True
    endpoints = frozenset({Endpoint.CHAT, Endpoint.EMBEDDINGS, Endpoint.RERANK})

    def headers(self, target: Target) -> list[tuple[str, str]]:
        headers = json_headers()
        if target.api_key:
            headers.append(("authorization", f"Bearer {target.api_key}"))
        headers.extend(target.headers)
        return headers

    def probe_request(self, target: Target) -> UpstreamCall:
        return UpstreamCall(
            target.base_url.join("v1/models", "page_size=1"), self.headers(target), b"", "GET"
        )

    def models_request(self, target: Target, cursor: str | None = None) -> UpstreamCall:
        query = urlencode({"page_size": 1000, **({"page_token": cursor} if cursor else {})})
        url = target.base_url.join("v1/models", query)
        return UpstreamCall(url, self.headers(target), b"", "GET")

    def models_page(self, body: bytes, target: Target) -> ModelPage:
        return model_lists.cohere_page(body)

    # -- chat ------------------------------------------------------------------------------

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        body = encode_json(translate_request(request, target.model, extras))
        return UpstreamCall(target.base_url.join("v2/chat"), self.headers(target), body)

    def chat_response(self, body: bytes, target: Target) -> Json:
        return completion(body, target)

    async def chat_stream(
        self, events: AsyncIterator[SSEEvent], target: Target
    ) -> AsyncIterator[Json]:
        translator = StreamTranslator(target)
        async for event in events:
            if not event.data or event.data == "[DONE]":
                continue
            data = decode_object(event.data, "stream event")
            data.setdefault("type", event.event)
            for chunk in translator.feed(data):
                yield chunk
            if translator.finished:
                return
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, "upstream stream ended before message-end"
        )

    # -- embeddings ------------------------------------------------------------------------

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> UpstreamCall:
        body = encode_json(embed.request_body(request, target))
        return UpstreamCall(target.base_url.join("v2/embed"), self.headers(target), body)

    def embeddings_response(self, body: bytes, target: Target, request: EmbeddingRequest) -> Json:
        return embed.answer(body, target, request)

    # -- rerank ----------------------------------------------------------------------------

    def operation_request(self, request: OperationRequest, target: Target) -> UpstreamCall:
        if request.endpoint is not Endpoint.RERANK:
            return super().operation_request(request, target)
        body = encode_json(rerank.request_body(request, target.model))
        return UpstreamCall(target.base_url.join("v2/rerank"), self.headers(target), body)

    def operation_response(
        self, request: OperationRequest, body: bytes, content_type: str, target: Target
    ) -> OperationAnswer:
        return OperationAnswer(rerank.answer(request, decode_object(body), target.model))

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return http_error(status, headers, body)
