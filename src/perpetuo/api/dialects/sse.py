"""Streams in a dialect's own framing: `event: <type>` / `data: <json>` pairs.

On the native lane the provider's events are forwarded exactly as they arrived (their chat
form only fed metering and the cache); on the translated lane each chat chunk goes through
the dialect's StreamEncoder. Either way a failure ends the stream with the dialect's own
error event(s), never a normal end, and events that arrived in one upstream read leave in
one write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from perpetuo.api.http import encode_json
from perpetuo.pipeline.context import RequestContext
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError
from perpetuo.schema.usage import Usage
from perpetuo.transport.sse import SSEEvent

Json = dict[str, Any]


class Encoder(Protocol):
    def feed(self, chunk: Json) -> list[Json]: ...

    def finish(self, usage: Usage | None, error: GatewayError | None) -> list[Json]: ...


_HEADS: dict[str, bytes] = {}  # "event: <type>\ndata: " by type: a few dozen types at most


def event_bytes(event: Json) -> bytes:
    kind = str(event["type"])
    head = _HEADS.get(kind)
    if head is None:
        head = b"event: " + kind.encode() + b"\ndata: "
        if len(_HEADS) < 256:
            _HEADS[kind] = head
    return head + encode_json(event) + b"\n\n"


def raw_bytes(event: SSEEvent) -> bytes:
    """A provider's event as it came (data lines split as SSE requires), in one formatting
    step: this runs for every event of every native stream."""
    data = event.data
    if "\n" in data:
        data = data.replace("\n", "\ndata: ")
    if event.event:
        return f"event: {event.event}\ndata: {data}\n\n".encode()
    return f"data: {data}\n\n".encode()


# The provider's own terminal failure events: replaced by ours, which say the same thing in
# the gateway's words (and never leak an upstream's text).
_UPSTREAM_FAILURES = frozenset({"error", "response.failed"})


async def dialect_events(
    stream: Any,
    ctx: RequestContext,
    encoder: Encoder,
    failure_events: Callable[[GatewayError], list[Json]],
    observe: Callable[[str, str], None] | None = None,
) -> AsyncIterator[bytes]:
    """The client's SSE bytes for a ChatStream or CachedStream. `observe(type, data)` sees
    each native event forwarded (e.g. to keep the final response of a Responses stream)."""
    raw = getattr(stream, "raw_events", None)
    chunks = stream.chunks()
    pending: list[bytes] = []
    failure: GatewayError | None = None
    first = True
    try:
        async for chunk in chunks:
            if "error" in chunk and "choices" not in chunk:
                failure = _as_error(chunk["error"])
                break
            if raw is not None:
                while raw:
                    event = raw.popleft()
                    if event.event in _UPSTREAM_FAILURES:
                        continue
                    pending.append(raw_bytes(event))
                    if observe is not None:
                        observe(event.event, event.data)
            else:
                pending.extend(event_bytes(e) for e in encoder.feed(chunk))
            if pending and (first or not stream.more_ready()):
                first = False
                yield b"".join(pending)
                pending.clear()
    finally:
        await chunks.aclose()
    if raw is not None:
        while raw:
            event = raw.popleft()
            if event.event not in _UPSTREAM_FAILURES:
                pending.append(raw_bytes(event))
                if observe is not None:
                    observe(event.event, event.data)
        if failure is not None:
            pending.extend(event_bytes(e) for e in failure_events(failure))
    else:
        pending.extend(event_bytes(e) for e in encoder.finish(ctx.usage, failure))
    if pending:
        yield b"".join(pending)


def _as_error(error: Any) -> GatewayError:
    """The pipeline's in-stream error object back as a GatewayError, for the dialect."""
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or ErrorType.UPSTREAM)
    status = {
        ErrorType.INVALID_REQUEST: 400,
        ErrorType.RATE_LIMIT: 429,
        ErrorType.TIMEOUT: 504,
        ErrorType.UNAVAILABLE: 503,
    }.get(kind, 502)  # type: ignore[call-overload]
    try:
        error_type = ErrorType(kind)
    except ValueError:
        error_type = ErrorType.UPSTREAM
    return GatewayError(
        status,
        str(error.get("message") or "The upstream provider failed mid-stream."),
        type=error_type,
        code=error.get("code") or ErrorCode.UPSTREAM_ERROR,
        param=error.get("param"),
    )
