"""Answers other than chat's that reach the client as they arrive, once the router has
committed to a deployment: speech audio (bytes, chunk by chunk, in the provider's content
type) and streamed text completions (SSE events, as the provider wrote them).

Both are metered when they end, also when they break off or the client leaves. A text
completion stream shows its usage chunk only to clients that asked for it (the gateway
always asks upstream); a failure mid-stream ends it with an OpenAI-format error event. Audio
has no way to say it failed but to stop short: the connection is dropped unfinished, so the
client sees a truncated body rather than a complete-looking one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from perpetuo.metering.operations import Metered, meter
from perpetuo.pipeline.context import RequestContext
from perpetuo.providers.base import decode_object
from perpetuo.routing.classify import from_transport, to_client_error
from perpetuo.routing.streams import OpenBody
from perpetuo.routing.table import Deployment
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.schema.operations import OperationRequest
from perpetuo.schema.usage import Usage
from perpetuo.transport.errors import TransportError
from perpetuo.transport.sse import DONE

_encode = msgspec.json.encode


class StreamBroken(Exception):
    """An audio answer failed mid-way: the response must end without its final chunk."""


def note(ctx: RequestContext, metered: Metered) -> None:
    """What the request used, for the request log, its cost and the limits' settlement."""
    ctx.usage = metered.usage
    ctx.unit, ctx.quantity = metered.unit, metered.quantity
    ctx.cost_micros += metered.cost_micros


class OperationStream:
    def __init__(self, ctx: RequestContext, opened: OpenBody, request: OperationRequest):
        self.ctx = ctx
        self.opened = opened
        self.request = request
        self.is_events = request.endpoint is Endpoint.COMPLETIONS
        self._usage: Usage | None = None
        self._text: list[str] = []

    @property
    def deployment(self) -> Deployment:
        return self.opened.deployment

    @property
    def content_type(self) -> str:
        if self.is_events:
            return "text/event-stream; charset=utf-8"
        return self.opened.response.headers.get("content-type") or "application/octet-stream"

    def on_close(self, disconnected: bool) -> None:
        """After the response ended; releases the deployment if the body never started."""
        if disconnected and self.ctx.error_code is None:
            self.ctx.status, self.ctx.error_code = 499, "client_disconnected"
        self.opened.close()

    async def body(self) -> AsyncIterator[bytes]:
        ctx, opened = self.ctx, self.opened
        ctx.mark_first_token()
        failure: UpstreamError | None = None
        completed = False
        try:
            pieces = self._events() if self.is_events else self._bytes()
            async for piece in pieces:
                yield piece
            completed = True
        except (UpstreamError, TransportError) as exc:
            failure = exc if isinstance(exc, UpstreamError) else from_transport(exc)
            client_error = to_client_error(_named(failure, opened))
            ctx.error_code = str(client_error.code)
            if not self.is_events:
                raise StreamBroken(client_error.message) from None
            yield b"data: " + _encode({"error": _error_body(client_error)}) + b"\n\n"
        finally:
            metered = meter(self.request, None, opened.deployment, self._usage, "".join(self._text))
            note(ctx, metered)
            total = metered.usage.total_tokens
            opened.finish(failure, completed=completed, total_tokens=total)
            opened.close()
        if completed and self.is_events:
            yield DONE

    async def _bytes(self) -> AsyncIterator[bytes]:
        async for chunk in self.opened.response.iter_bytes():
            yield chunk

    async def _events(self) -> AsyncIterator[bytes]:
        """The provider's events, a burst of them (one network read) in one write."""
        dep = self.opened.deployment
        decoder = dep.adapter.stream_events(self.opened.response.iter_bytes(), dep.target)
        wants_usage = _wants_usage(self.request)
        pending: list[bytes] = []
        async for event in decoder:
            data = event.data
            if data == "[DONE]":
                break
            if not data:
                continue
            chunk = decode_object(data, "stream event")
            if "error" in chunk and "choices" not in chunk:
                raise _error_event(chunk["error"])
            if (usage := Usage.from_openai(chunk.get("usage"))) is not None:
                self._usage = usage
            choices = chunk.get("choices")
            if choices:
                self._text.extend(str(c.get("text") or "") for c in choices if isinstance(c, dict))
            elif chunk.get("usage") and not wants_usage:
                continue  # the usage-only chunk the gateway asked for, not the client
            pending.append(b"data: " + data.encode() + b"\n\n")
            if not decoder.has_pending():
                yield b"".join(pending)
                pending.clear()
        if pending:
            yield b"".join(pending)


def _wants_usage(request: OperationRequest) -> bool:
    options = request.param("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _named(error: UpstreamError, opened: OpenBody) -> UpstreamError:
    if error.provider is None:  # the client's error names who failed
        error.provider = opened.deployment.provider
        error.endpoint = opened.deployment.target.base_url.origin.host_header
    return error


def _error_event(error: Any) -> UpstreamError:
    message = error.get("message") if isinstance(error, dict) else error
    return UpstreamError(UpstreamErrorKind.SERVER, str(message or "upstream error")[:2000])


def _error_body(error: Any) -> dict[str, Any]:
    return {
        "message": error.message,
        "type": str(error.type),
        "param": error.param,
        "code": str(error.code),
    }
