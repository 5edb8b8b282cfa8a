"""OpenAI and every host that speaks its wire format (vLLM, Ollama, Groq, Together, ...).

The request is already in OpenAI's format, so the work is small: swap in the upstream model,
ask for usage on streams, and smooth each host's quirks, which are data (see presets.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from perpetuo.providers import model_lists
from perpetuo.providers import openai_answers as answers
from perpetuo.providers import openai_operations as operations
from perpetuo.providers import openai_requests as requests
from perpetuo.providers import openai_responses as responses_format
from perpetuo.providers.base import (
    Json,
    ModelPage,
    NativeRequest,
    OperationAnswer,
    ProviderAdapter,
    Target,
    UpstreamCall,
    checked_usage,
    decode_object,
    encode_json,
    floats_to_base64,
    json_headers,
    with_model,
)
from perpetuo.providers.presets import OpenAIQuirks
from perpetuo.schema.chat import (
    ChatCompletionRequest,
    DeveloperMessage,
    StreamOptions,
    SystemMessage,
)
from perpetuo.schema.embeddings import EmbeddingRequest
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest
from perpetuo.schema.reasoning import unseal
from perpetuo.transport.sse import SSEEvent

_replace = msgspec.structs.replace
RESPONSES = "openai_responses"  # the Responses API as a client dialect


class OpenAIAdapter(ProviderAdapter):
    supports_embeddings = True

    def __init__(self, type_name: str, quirks: OpenAIQuirks) -> None:
        self.type = type_name  # type: ignore[misc]
        self.quirks = quirks
        self.default_api_base = quirks.api_base  # type: ignore[misc]
        self.requires_key = quirks.requires_key
        self.endpoints = quirks.endpoints
        self.reports_cost = quirks.cost_field is not None

    def endpoints_for(self, model_endpoints: frozenset[str] | None) -> frozenset[str]:
        served = super().endpoints_for(model_endpoints)
        chat_model = model_endpoints is not None and Endpoint.CHAT in model_endpoints
        if chat_model and not self.quirks.chat_models_complete:
            served -= {Endpoint.COMPLETIONS}  # OpenAI's /completions is not for chat models
        return served

    # -- requests --------------------------------------------------------------------------

    def auth_headers(self, target: Target) -> list[tuple[str, str]]:
        headers = json_headers()
        if target.api_key and self.quirks.key_header:
            headers.append((self.quirks.key_header, target.api_key))
        elif target.api_key:
            headers.append(("authorization", f"Bearer {target.api_key}"))
        if target.organization:
            headers.append(("openai-organization", target.organization))
        if target.project:
            headers.append(("openai-project", target.project))
        headers.extend(target.headers)
        return headers

    def chat_url(self, target: Target) -> Any:
        return target.base_url.join("chat/completions")

    def embeddings_url(self, target: Target) -> Any:
        return target.base_url.join("embeddings")

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        quirks = self.quirks
        changes = requests.parameter_changes(request, quirks, target.model, self.type)
        changes["model"] = target.model
        if request.is_stream and quirks.stream_usage:
            # Always ask for usage: metering needs it even when the client did not.
            opts = request.stream_options
            base = opts if isinstance(opts, StreamOptions) else StreamOptions()
            changes["stream_options"] = _replace(base, include_usage=True)
        if not quirks.max_completion_tokens and isinstance(request.max_completion_tokens, int):
            changes["max_tokens"] = request.max_completion_tokens
            changes["max_completion_tokens"] = msgspec.UNSET
        messages = request.messages
        if not quirks.developer_role and any(isinstance(m, DeveloperMessage) for m in messages):
            messages = changes["messages"] = [
                SystemMessage(content=m.content, name=m.name)
                if isinstance(m, DeveloperMessage)
                else m
                for m in messages
            ]
        if any(requests.carries_reasoning(m) for m in messages):
            keep = quirks.replays_reasoning
            messages = changes["messages"] = [requests.without_reasoning(m, keep) for m in messages]
        if quirks.tool_id_length is not None:
            changes["messages"] = requests.with_tool_ids(messages, quirks.tool_id_length)
        outgoing = _replace(request, **changes)
        payload = encode_json(outgoing)
        renames = quirks.renames
        if quirks.request_defaults:
            extras = {**quirks.request_defaults, **extras}
        if extras or renames:
            data = msgspec.json.decode(payload)
            for old, new in renames.items():
                if old in data:
                    data[new] = data.pop(old)
            data.update(extras)
            payload = encode_json(data)
        return UpstreamCall(self.chat_url(target), self.auth_headers(target), payload)

    def probe_request(self, target: Target) -> UpstreamCall:
        return UpstreamCall(self.models_url(target), self.auth_headers(target), b"", "GET")

    def models_url(self, target: Target) -> Any:
        return target.base_url.join("models")

    def models_request(self, target: Target, cursor: str | None = None) -> UpstreamCall:
        return self.probe_request(target)  # one page: OpenAI-format lists are not paged

    def models_page(self, body: bytes, target: Target) -> ModelPage:
        return model_lists.openai_page(body)

    def embeddings_request(self, request: EmbeddingRequest, target: Target) -> UpstreamCall:
        changes: dict[str, Any] = {"model": target.model}
        if not self.quirks.embedding_input_type:
            changes["input_type"] = msgspec.UNSET
        if request.wants_base64 and self.quirks.float_embeddings_only:
            changes["encoding_format"] = "float"  # converted back in embeddings_response
        payload = encode_json(_replace(request, **changes))
        return UpstreamCall(self.embeddings_url(target), self.auth_headers(target), payload)

    def operation_url(self, target: Target, request: OperationRequest) -> Any:
        return target.base_url.join(request.path)

    def operation_request(self, request: OperationRequest, target: Target) -> UpstreamCall:
        if request.endpoint not in self.endpoints:
            return super().operation_request(request, target)  # raises: not offered
        url = self.operation_url(target, request)
        return operations.build_call(
            url, self.auth_headers(target), request, target, self.quirks.stream_usage
        )

    def operation_response(
        self, request: OperationRequest, body: bytes, content_type: str, target: Target
    ) -> OperationAnswer:
        return operations.read_answer(request, body, content_type, target, _error_in_body)

    # -- responses -------------------------------------------------------------------------

    def chat_response(self, body: bytes, target: Target) -> Json:
        data = decode_object(body)
        if "error" in data and "choices" not in data:
            raise _error_in_body(data["error"])
        if not isinstance(data.get("choices"), list):
            raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream response has no choices")
        if self.quirks.fixes_answers:
            answers.fix_completion(data, self.quirks)
        checked_usage(data.get("usage"), target)  # forwarded as is: clamped in place
        data.setdefault("object", "chat.completion")
        data.setdefault("model", target.model)
        return data

    async def chat_stream(
        self, events: AsyncIterator[SSEEvent], target: Target
    ) -> AsyncIterator[Json]:
        quirks = self.quirks if self.quirks.fixes_answers else None
        async for event in events:
            data = event.data
            if data == "[DONE]":
                return
            if not data:
                continue
            chunk = decode_object(data, "stream event")
            if "error" in chunk and "choices" not in chunk:
                raise _error_in_body(chunk["error"])
            if quirks is not None:
                answers.fix_chunk(chunk, quirks)
            if usage := chunk.get("usage"):
                checked_usage(usage, target)
            yield chunk

    # -- the native lane: Responses API clients -----------------------------------------

    def speaks(self, native_format: str) -> bool:
        return native_format == RESPONSES and self.quirks.responses_api

    def responses_url(self, target: Target) -> Any:
        return target.base_url.join("responses")

    def native_call(
        self, native: NativeRequest, body: Json, target: Target, max_output: int | None
    ) -> UpstreamCall:
        body = _without_foreign_reasoning(body)
        payload = with_model(body, target.model, "max_output_tokens", max_output)
        return UpstreamCall(self.responses_url(target), self.auth_headers(target), payload)

    def native_response(self, native_format: str, body: bytes, target: Target) -> Json:
        return responses_format.to_chat(body, target)

    async def native_stream(
        self, native_format: str, events: AsyncIterator[SSEEvent], target: Target
    ) -> AsyncIterator[Json]:
        translator = responses_format.ResponsesStreamToChat(target)
        async for event in events:
            if not event.data or event.data == "[DONE]" or not translator.wants(event.event):
                continue
            for chunk in translator.feed(decode_object(event.data, "stream event")):
                yield chunk
            if translator.finished:
                return
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, "upstream stream ended before it completed"
        )

    def embeddings_response(self, body: bytes, target: Target, request: EmbeddingRequest) -> Json:
        data = decode_object(body)
        if not isinstance(data.get("data"), list):
            raise UpstreamError(UpstreamErrorKind.BAD_RESPONSE, "upstream response has no data")
        checked_usage(data.get("usage"), target)
        if request.wants_base64 and self.quirks.float_embeddings_only:
            for item in data["data"]:
                if isinstance(item, dict) and isinstance(item.get("embedding"), list):
                    item["embedding"] = floats_to_base64(item["embedding"])
        return data


def _without_foreign_reasoning(body: Json) -> Json:
    """The body without reasoning items that carry another provider's sealed thinking (an
    earlier turn Anthropic served): OpenAI refuses encrypted content it did not make, and
    that thinking means nothing to it."""
    items = body.get("input")
    if not isinstance(items, list) or not any(map(_foreign_reasoning, items)):
        return body
    return {**body, "input": [item for item in items if not _foreign_reasoning(item)]}


def _foreign_reasoning(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type") == "reasoning"
        and unseal(item.get("encrypted_content")) is not None
    )


def _error_in_body(error: Any) -> UpstreamError:
    """Some hosts answer 200 with an error object, or put one inside the stream."""
    message = error.get("message") if isinstance(error, dict) else str(error)
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) else 502
    kind = UpstreamErrorKind.SERVER if status >= 500 else UpstreamErrorKind.INVALID_REQUEST
    if status == 429:
        kind = UpstreamErrorKind.RATE_LIMIT
    return UpstreamError(kind, str(message or "upstream error"), status=status)
