"""The playground's three client APIs: the request each one makes of the same conversation,
and the stream it answers with.

Chat Completions, Responses and Messages requests go through the data plane's own decoders,
lanes and stream encoders, so what the page shows is what a client of that API gets: a
Responses request reaches OpenAI deployments as it is (pass-through), a Messages request
reaches Anthropic deployments as it is, and every other pairing is translated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from perpetuo.api.dialects.anthropic_messages import errors as message_errors
from perpetuo.api.dialects.anthropic_messages import request as message_request
from perpetuo.api.dialects.anthropic_messages.stream import StreamEncoder as MessagesEncoder
from perpetuo.api.dialects.base import DialectRequest
from perpetuo.api.dialects.openai_responses import errors as response_errors
from perpetuo.api.dialects.openai_responses import request as responses_request
from perpetuo.api.dialects.openai_responses.stream import StreamEncoder as ResponsesEncoder
from perpetuo.api.dialects.sse import Encoder, dialect_events
from perpetuo.api.http import encode_json
from perpetuo.api.ingress import decode_chat_request
from perpetuo.control.errors import invalid
from perpetuo.pipeline.context import RequestContext
from perpetuo.providers.anthropic import MESSAGES
from perpetuo.providers.base import NativeRequest
from perpetuo.providers.openai import RESPONSES
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import GatewayError

Json = dict[str, Any]
# By the request log's endpoint name, which is also what the page sends.
APIS = {"chat": "Chat Completions", "responses": "Responses", "messages": "Messages"}
MESSAGES_MAX_TOKENS = 1024  # the Messages API requires max_tokens; the page may leave it empty


@dataclass(slots=True)
class PlaygroundRequest:
    api: str  # chat | responses | messages
    chat: ChatCompletionRequest  # the internal form the pipeline runs
    extras: Json
    dialect: DialectRequest | None = None  # for Responses and Messages
    native: NativeRequest | None = None

    @property
    def name(self) -> str:
        return APIS[self.api]


def build(body: Json) -> PlaygroundRequest:
    """The page's conversation (`system`, `messages`, `temperature`, `max_tokens`) as a
    streamed request of the chosen `api`."""
    api = body.get("api") or "chat"
    if api not in APIS:
        raise invalid("`api` is chat, responses or messages.", "api")
    system = body.get("system") if isinstance(body.get("system"), str) else ""
    turns = body.get("messages")
    temperature, max_tokens = (body.get(n) for n in ("temperature", "max_tokens"))
    if api == "chat":
        payload: Json = {
            "model": body.get("model"),
            "messages": [{"role": "system", "content": system}, *turns]
            if system and isinstance(turns, list)
            else turns,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        _set(payload, "temperature", temperature)
        _set(payload, "max_tokens", max_tokens)
        chat, extras = decode_chat_request(encode_json(payload))
        return PlaygroundRequest(api, chat, extras)
    if api == "responses":
        # The page keeps the conversation itself: nothing to store between turns.
        payload = {"model": body.get("model"), "input": turns, "stream": True, "store": False}
        _set(payload, "instructions", system or None)
        _set(payload, "temperature", temperature)
        _set(payload, "max_output_tokens", max_tokens)
        decoded = responses_request.decode(encode_json(payload))
        native = NativeRequest(RESPONSES, decoded.raw, native_only=tuple(decoded.native_only))
    else:
        payload = {"model": body.get("model"), "messages": turns, "stream": True}
        payload["max_tokens"] = max_tokens if max_tokens not in (None, "") else MESSAGES_MAX_TOKENS
        _set(payload, "system", system or None)
        _set(payload, "temperature", temperature)
        decoded = message_request.decode(encode_json(payload))
        native = NativeRequest(MESSAGES, decoded.raw, native_only=tuple(decoded.native_only))
    return PlaygroundRequest(api, decoded.chat, {}, decoded, native)


def _set(payload: Json, name: str, value: Any) -> None:
    if value not in (None, ""):
        payload[name] = value


def lane(request: PlaygroundRequest, stream: Any) -> str | None:
    """How the answer came: pass-through (the deployment speaks the request's API),
    translated, or from the cache. None for Chat Completions, every provider's common form."""
    if request.api == "chat":
        return None
    if getattr(stream, "deployment", None) is None:
        return "cache"
    return "pass-through" if stream.raw_events is not None else "translated"


async def events(
    request: PlaygroundRequest, stream: Any, ctx: RequestContext
) -> AsyncIterator[bytes]:
    """The answer's SSE bytes in the request's own API."""
    if request.dialect is None:
        async for chunk in stream.chunks():
            yield b"data: " + encode_json(chunk) + b"\n\n"
        return
    model = request.dialect.raw["model"]
    encoder: Encoder
    if request.api == "responses":
        encoder = responses = ResponsesEncoder(model, request.dialect)

        def failed(error: GatewayError) -> list[Json]:
            return response_errors.stream_events(error, {"id": responses.id, "model": model})

    else:
        encoder = MessagesEncoder(model, request.dialect)

        def failed(error: GatewayError) -> list[Json]:
            return [message_errors.stream_event(error)]

    async for piece in dialect_events(stream, ctx, encoder, failed):
        yield piece
