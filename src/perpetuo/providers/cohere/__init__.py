"""Cohere's API (api.cohere.com). For now its rerank (v2, rerank.py); chat and embeddings
can join this package as adapters of their own modules.

Authentication is `Authorization: Bearer <key>`; errors are `{"id", "message"}` objects,
read like OpenAI's by the shared classifier (the status decides the kind).
"""

from __future__ import annotations

from perpetuo.providers.base import (
    Json,
    OperationAnswer,
    ProviderAdapter,
    Target,
    UpstreamCall,
    decode_object,
    encode_json,
    json_headers,
    unsupported,
)
from perpetuo.providers.cohere import rerank
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.operations import OperationRequest

__all__ = ["CohereAdapter"]


class CohereAdapter(ProviderAdapter):
    type = "cohere"
    default_api_base = "https://api.cohere.com"
    endpoints = frozenset({Endpoint.RERANK})

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

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        raise unsupported("the cohere provider type serves rerank only, for now")

    def operation_request(self, request: OperationRequest, target: Target) -> UpstreamCall:
        if request.endpoint is not Endpoint.RERANK:
            return super().operation_request(request, target)
        body = encode_json(rerank.request_body(request, target.model))
        return UpstreamCall(target.base_url.join("v2/rerank"), self.headers(target), body)

    def operation_response(
        self, request: OperationRequest, body: bytes, content_type: str, target: Target
    ) -> OperationAnswer:
        return OperationAnswer(rerank.answer(request, decode_object(body), target.model))
