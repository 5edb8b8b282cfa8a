"""Minimal ASGI request and response primitives for the data plane's hot path.

A full framework's request/response objects cost more per request than the whole routing
decision; these do only what the data plane needs, including streaming with prompt
cancellation when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

encode_json = msgspec.json.Encoder().encode
JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
]


class Request:
    __slots__ = ("headers", "method", "path", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers: dict[str, str] = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }

    @property
    def client_ip(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else ""

    async def body(self, limit: int) -> bytes:
        """The whole body; 413 as soon as it is known to exceed `limit` bytes."""
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ClientGone(Exception):
    """The client disconnected before the request was read."""


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"Request body is larger than the {limit}-byte limit.",
        type=ErrorType.INVALID_REQUEST,
        code=ErrorCode.REQUEST_TOO_LARGE,
    )


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []

    async def send(self, send: Send, receive: Receive, extra: list[tuple[bytes, bytes]]) -> None:
        headers = [*self.headers, *extra, (b"content-length", str(len(self.body)).encode())]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(
    data: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    return Response(status, encode_json(data), [JSON_TYPE, *(headers or ())])


def error_response(error: GatewayError) -> Response:
    headers = [JSON_TYPE, *((k.encode(), v.encode()) for k, v in error.headers.items())]
    return Response(error.status, error.body(), headers)


class StreamingResponse:
    """Sends body pieces as they are produced; stops the producer when the client leaves."""

    __slots__ = ("body", "headers", "on_close", "status")

    def __init__(
        self,
        body: AsyncIterator[bytes],
        headers: list[tuple[bytes, bytes]],
        status: int = 200,
        on_close: Callable[[bool], None] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.on_close = on_close  # called with True when the client disconnected early

    async def send(self, send: Send, receive: Receive, extra: list[tuple[bytes, bytes]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [*self.headers, *extra],
            }
        )
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        disconnected = False
        try:
            done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if pump not in done:
                disconnected = True
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            elif (failure := pump.exception()) is not None:
                if not isinstance(failure, OSError):
                    raise failure
                disconnected = True
        finally:
            watcher.cancel()
            if not pump.done():
                pump.cancel()
            aclose = getattr(self.body, "aclose", None)
            if aclose is not None:
                await aclose()
            if self.on_close is not None:
                self.on_close(disconnected)

    async def _pump(self, send: Send) -> None:
        async for piece in self.body:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
