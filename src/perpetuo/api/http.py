"""Minimal ASGI request and response primitives for the data plane's hot path.

A full framework's request/response objects cost more per request than the whole routing
decision; these do only what the data plane needs, including streaming with prompt
cancellation when the client goes away. `TrustedProxies` decides every request's client
address (and scheme) once, for the data plane, the admin API and the dashboard alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
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


class TrustedProxies:
    """Peers whose X-Forwarded-For and X-Forwarded-Proto are believed (PERPETUO_TRUSTED_PROXIES:
    addresses or CIDRs, comma-separated, or `*` for any peer).

    Each proxy appends the address it received the request from, so only the right end of
    X-Forwarded-For is written by proxies we trust; anything to its left is whatever the
    client sent. The client is the right-most address that is not a trusted proxy: a client
    cannot choose it by sending a made-up chain. With `*` the peer is trusted but the chain's
    entries are not, so the client is the right-most entry (one proxy layer)."""

    def __init__(self, spec: str) -> None:
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        self.any_peer = "*" in entries
        self._networks = tuple(_network(e) for e in entries if e != "*")
        self._trusted = functools.lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def trusts(self, host: str) -> bool:
        return bool(host) and len(host) <= 64 and self._trusted(host)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address, given the connecting peer and the X-Forwarded-For values."""
        if not forwarded_for or not (self.any_peer or self.trusts(peer)):
            return peer
        hops = [_host_of(hop) for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        if not hops:
            return peer
        if self.any_peer and not self._networks:
            return hops[-1]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0]  # every hop is a trusted proxy: the client is one of ours

    def apply(self, scope: Scope) -> None:
        """Rewrite the ASGI scope's client (and scheme) from a trusted peer's headers."""
        client = scope.get("client")
        peer = client[0] if client else ""
        if not (self.any_peer or self.trusts(peer)):
            return
        forwarded: list[str] = []
        proto = None
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        if forwarded:
            scope["client"] = (self.client(peer, forwarded), 0)
        if proto in ("http", "https"):
            scope["scheme"] = proto


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            f"PERPETUO_TRUSTED_PROXIES: {entry!r} is not an IP address, a CIDR range or *"
        ) from None


def _host_of(hop: str) -> str:
    """An X-Forwarded-For entry without its port ("1.2.3.4:80", "[::1]:80"), at most 64
    characters (the longest address a log column keeps)."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1 : hop.find("]")] if "]" in hop else hop[1:]
    elif hop.count(":") == 1:
        hop = hop.split(":", 1)[0]
    return hop[:64]


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
