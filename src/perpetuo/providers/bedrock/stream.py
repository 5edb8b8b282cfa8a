"""Bedrock stream bodies as events: the adapter's EventSource (see base.py).

ConverseStream messages become events named by `:event-type` (messageStart,
contentBlockDelta, ...) with the JSON payload as data. InvokeModelWithResponseStream wraps
each of the model's own events in a `chunk` message whose payload is `{"bytes": base64}`:
these are unwrapped, so an Anthropic model's stream reads exactly as Anthropic's SSE events.
A message of type `exception` (or `error`) raises the classified UpstreamError at its place
in the stream: the events before it are delivered first.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import AsyncIterator

import msgspec

from perpetuo.providers.bedrock.errors import stream_exception
from perpetuo.providers.bedrock.eventstream import EventStreamParser, Message, corrupt
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.sse import SSEEvent

_decode = msgspec.json.decode


class BedrockEventDecoder:
    def __init__(
        self, chunks: AsyncIterator[bytes], max_event_bytes: int, unwrap_chunks: bool
    ) -> None:
        self._chunks = chunks
        self._parser = EventStreamParser(max_event_bytes)
        self._unwrap = unwrap_chunks
        self._ready: deque[Message] = deque()

    def has_pending(self) -> bool:
        return bool(self._ready)

    def __aiter__(self) -> AsyncIterator[SSEEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SSEEvent]:
        ready = self._ready
        async for data in self._chunks:
            ready.extend(self._parser.feed(data))
            while ready:
                event = self._event(ready.popleft())
                if event is not None:
                    yield event
        self._parser.close()

    def _event(self, message: Message) -> SSEEvent | None:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "exception":
            name = headers.get(":exception-type")
            raise stream_exception(name if isinstance(name, str) else None, message.payload)
        if kind == "error":
            code, text = headers.get(":error-code"), headers.get(":error-message")
            raise UpstreamError(UpstreamErrorKind.SERVER, f"upstream stream error: {code}: {text}")
        if kind != "event":
            return None  # a message kind this gateway does not know: nothing to say
        name = headers.get(":event-type")
        if self._unwrap and name == "chunk":
            return SSEEvent(_unwrapped(message.payload))
        try:
            return SSEEvent(message.payload.decode("utf-8"), name if isinstance(name, str) else "")
        except UnicodeDecodeError:
            raise corrupt("an event payload is not UTF-8") from None


def _unwrapped(payload: bytes) -> str:
    """The model's own event inside a `chunk` ({"bytes": base64 of its JSON})."""
    try:
        wrapper = _decode(payload)
        return base64.b64decode(wrapper["bytes"], validate=True).decode("utf-8")
    except (msgspec.DecodeError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise corrupt("a chunk event does not carry base64 JSON bytes") from None
