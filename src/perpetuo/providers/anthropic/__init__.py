"""Anthropic's Messages API (`POST /v1/messages`) behind the OpenAI chat format.

The modules split the work: `request` builds the Messages body, `response` turns messages
and stream events back into OpenAI objects, `errors` classifies Anthropic's error objects.

Translation decisions worth knowing:
- response_format (json_schema and json_object) is served with a forced tool whose
  input_schema is the client's schema; its input comes back as the message content (a JSON
  string) with finish_reason "stop". Forced tool use works on every Claude model and API
  version and constrains the output to the schema, where a system-prompt instruction only
  asks for it and native structured outputs exist only on recent models. When the client
  also offers tools, the model must call one of them or the JSON tool (`tool_choice: any`).
- temperature above 1 is clamped to 1, Anthropic's maximum (OpenAI accepts up to 2).
- max_tokens is required by Anthropic: the client's limit, else DEFAULT_MAX_TOKENS.
- n > 1, logprobs, audio output, web search and the legacy functions API are refused as
  unsupported (the router tries another deployment); parameters that only tune sampling or
  bookkeeping (seed, penalties, logit_bias, store, metadata, service_tier, ...) are dropped.
- thinking blocks are returned as `reasoning_content` on the message (and on stream deltas).
- Alias-allowed extra parameters (top_k, thinking, ...) are merged into the body verbatim.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlencode

from perpetuo.providers import model_lists
from perpetuo.providers.anthropic.errors import http_error
from perpetuo.providers.anthropic.request import MIN_THINKING_BUDGET, translate_request
from perpetuo.providers.anthropic.response import StreamTranslator, translate_response
from perpetuo.providers.base import (
    Json,
    ModelPage,
    NativeRequest,
    ProviderAdapter,
    Target,
    UpstreamCall,
    decode_object,
    encode_json,
    json_headers,
    with_model,
)
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.sse import SSEEvent
from perpetuo.transport.url import URL

__all__ = ["DEFAULT_API_VERSION", "AnthropicAdapter"]

DEFAULT_API_VERSION = "2023-06-01"
API_KEY_HEADER = "x-api-key"
VERSION_HEADER = "anthropic-version"
BETA_HEADER = "anthropic-beta"
MESSAGES = "anthropic_messages"  # the Messages API as a client dialect


class AnthropicAdapter(ProviderAdapter):
    type = "anthropic"
    default_api_base = "https://api.anthropic.com"

    def messages_url(self, target: Target) -> URL:
        path = target.base_url.target.split("?", 1)[0].rstrip("/")
        # Accept api_base with or without the version segment, never producing /v1/v1.
        return target.base_url.join("messages" if path.endswith("/v1") else "v1/messages")

    def headers(self, target: Target) -> list[tuple[str, str]]:
        headers = json_headers((VERSION_HEADER, target.api_version or DEFAULT_API_VERSION))
        if target.api_key:
            headers.append((API_KEY_HEADER, target.api_key))
        headers.extend(target.headers)  # e.g. anthropic-beta
        return headers

    def probe_request(self, target: Target) -> UpstreamCall:
        return self.models_request(target, limit=1)

    def models_request(
        self, target: Target, cursor: str | None = None, limit: int = 1000
    ) -> UpstreamCall:
        path = target.base_url.target.split("?", 1)[0].rstrip("/")
        query = urlencode({"limit": limit, **({"after_id": cursor} if cursor else {})})
        url = target.base_url.join("models" if path.endswith("/v1") else "v1/models", query)
        return UpstreamCall(url, self.headers(target), b"", "GET")

    def models_page(self, body: bytes, target: Target) -> ModelPage:
        return model_lists.anthropic_page(body)

    def chat_request(
        self, request: ChatCompletionRequest, target: Target, extras: Json
    ) -> UpstreamCall:
        body = translate_request(request, target.model, extras)
        return UpstreamCall(self.messages_url(target), self.headers(target), encode_json(body))

    def chat_response(self, body: bytes, target: Target) -> Json:
        return translate_response(body, target)

    async def chat_stream(
        self, events: AsyncIterator[SSEEvent], target: Target
    ) -> AsyncIterator[Json]:
        translator = StreamTranslator(target)
        async for event in events:
            if not event.data:
                continue
            data = decode_object(event.data, "stream event")
            data.setdefault("type", event.event)
            for chunk in translator.feed(data):
                yield chunk
            if translator.finished:
                return
        raise UpstreamError(
            UpstreamErrorKind.BAD_RESPONSE, "upstream stream ended before message_stop"
        )

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        return http_error(status, headers, body)

    # -- the native lane: Messages API clients -------------------------------------------

    def speaks(self, native_format: str) -> bool:
        return native_format == MESSAGES

    def native_call(
        self, native: NativeRequest, body: Json, target: Target, max_output: int | None
    ) -> UpstreamCall:
        headers = self.headers(target)
        given = dict(native.headers)
        if version := given.get(VERSION_HEADER):  # the client's version wins over ours
            headers = [(n, v) for n, v in headers if n != VERSION_HEADER]
            headers.append((VERSION_HEADER, version))
        if beta := given.get(BETA_HEADER):
            ours = [v for n, v in headers if n == BETA_HEADER]
            headers = [(n, v) for n, v in headers if n != BETA_HEADER]
            headers.append((BETA_HEADER, ",".join([*ours, beta])))
        body = _thinking_within(body, max_output)
        payload = with_model(body, target.model, "max_tokens", max_output)
        return UpstreamCall(self.messages_url(target), headers, payload)

    def native_response(self, native_format: str, body: bytes, target: Target) -> Json:
        return translate_response(body, target)

    def native_stream(
        self, native_format: str, events: AsyncIterator[SSEEvent], target: Target
    ) -> AsyncIterator[Json]:
        return self.chat_stream(events, target)


def _thinking_within(body: Json, max_output: int | None) -> Json:
    """A thinking budget that fitted under the client's max_tokens, cut to fit under the
    deployment's smaller limit (Anthropic refuses a budget that is not below max_tokens).
    A budget above the client's own limit (interleaved thinking allows one) is left as is."""
    limit, thinking = body.get("max_tokens"), body.get("thinking")
    if max_output is None or not isinstance(limit, int) or not isinstance(thinking, dict):
        return body
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or not max_output <= budget < limit:
        return body
    if max_output - 1 < MIN_THINKING_BUDGET:
        return body  # no budget fits: Anthropic says so
    return {**body, "thinking": {**thinking, "budget_tokens": max_output - 1}}
