"""A pooled keep-alive HTTP/1.1 client for talking to LLM providers.

Built on asyncio protocols and httptools (the parser uvicorn uses) because the upstream call
is most of the gateway's per-request CPU: general-purpose async clients cost several times
more per request. It does exactly what upstream calls need: keep-alive pools per origin,
TLS, chunked and content-length bodies, gzip, streaming with back-pressure, and timeouts
for connect, first byte, silence between chunks and the whole exchange.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Iterable

import httptools

from perpetuo.transport.caps import BodyBudget, ResponseCaps
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.errors import (
    ConnectError,
    ConnectionClosed,
    ProtocolError,
    ResponseTooLarge,
    TransportError,
    UpstreamTimeout,
)
from perpetuo.transport.response import DEFAULT_CAPS, UpstreamResponse
from perpetuo.transport.url import URL, Origin, Timeouts

# Trusted calls pool by origin; policy-checked (tenant) calls apart, so a connection a
# trusted call opened to an internal address is never handed to a tenant's request.
PoolKey = Origin | tuple[Origin, str]
_HIGH_WATER = 256 * 1024  # pause reading the socket when this much body is unread
_FORBIDDEN_HEADER_CHARS = str.maketrans("", "", "\r\n\0")
_MAX_HEAD = 64 * 1024  # status line and headers: an endless head is refused, not buffered

__all__ = ["HTTPClient", "UpstreamResponse"]


class _Connection(asyncio.Protocol):
    """One upstream connection; carries one exchange at a time."""

    def __init__(self, origin: Origin, pool_key: PoolKey | None = None) -> None:
        self.origin = origin
        self.pool_key: PoolKey = origin if pool_key is None else pool_key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._reset_exchange()

    def _reset_exchange(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.headers_done = False
        self.message_done = False
        self.keep_alive = False
        self.got_bytes = False
        self.head_bytes = 0
        self.error: TransportError | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("upstream attempted a protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP response from upstream: {exc}"))
        if not self.headers_done:  # everything so far was head (httptools buffers it)
            self.head_bytes += len(data)
            if self.head_bytes > _MAX_HEAD:
                self._fail(ResponseTooLarge("response head", _MAX_HEAD))

    def eof_received(self) -> bool | None:
        # A response delimited by connection close ends here.
        if self.headers_done and not self.message_done and not self._has_framing():
            self.on_message_complete()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.message_done:
            self._fail(
                ConnectionClosed(
                    "upstream closed the connection",
                    before_response=not self.got_bytes,
                )
            )

    def pause_writing(self) -> None:  # request bodies are small; nothing to throttle
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200:  # interim response: wait for the real one
            self.headers = []
            return
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:  # end of an interim response
            return
        self.message_done = True
        self.keep_alive = self._parser.should_keep_alive()  # only valid inside the callback
        self._wake()

    # -- exchange --------------------------------------------------------------------------

    def _has_framing(self) -> bool:
        for name, value in self.headers:
            if name == "content-length" or (name == "transfer-encoding" and "chunked" in value):
                return True
        return False

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        self._wake()
        if self.transport and not self.transport.is_closing():
            self.transport.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, deadline: float, phase: str) -> None:
        # A timer handle per wait is far cheaper than asyncio.timeout() and its task juggling.
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_at(deadline, _expire, waiter, phase)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def send(self, head: bytes, body: bytes) -> None:
        self._reset_exchange()
        if self.closed or self.transport is None or self.transport.is_closing():
            self.error = ConnectionClosed("upstream closed the connection", before_response=True)
            return
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    async def wait_headers(self, deadline: float, phase: str) -> None:
        while not self.headers_done and self.error is None:
            await self._wait(deadline, phase)
        if self.error is not None and not self.headers_done:
            raise self.error

    async def next_chunk(self, deadline: float, phase: str) -> bytes | None:
        """The next piece of body, or None at the end of the message."""
        while not self._chunks:
            if self.message_done:
                return None
            if self.error is not None:
                raise self.error
            await self._wait(deadline, phase)
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _HIGH_WATER // 2 and self.transport:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return self.message_done and self.error is None and not self.closed and self.keep_alive

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class HTTPClient:
    """Keep-alive connection pools keyed by origin, shared by every upstream call."""

    def __init__(
        self,
        *,
        max_idle_per_origin: int = 256,
        idle_timeout: float = 60.0,
        max_buffered_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.body_budget = BodyBudget(max_buffered_bytes)  # see transport/caps.py
        self._idle: dict[PoolKey, list[_Connection]] = {}
        self._max_idle = max_idle_per_origin
        self._idle_timeout = idle_timeout
        self._ssl_contexts: dict[bool, ssl.SSLContext] = {}
        self._closed = False

    async def request(
        self,
        method: str,
        url: URL,
        headers: Iterable[tuple[str, str]],
        body: bytes = b"",
        timeouts: Timeouts | None = None,
        *,
        deadline: float | None = None,
        verify_tls: bool = True,
        egress: EgressPolicy | None = None,
        caps: ResponseCaps = DEFAULT_CAPS,
    ) -> UpstreamResponse:
        """Send a request and wait for the response head.

        `deadline` (event-loop time) bounds the whole exchange, body included; the
        timeouts bound each phase within it. With `egress` (tenant-supplied URLs), the
        host is resolved and checked by the policy, and only a checked address is dialled;
        such connections live in pools of their own, never shared with trusted calls.
        `caps` bound what the response may make us hold (see transport/caps.py)."""
        timeouts = timeouts or Timeouts()
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + (timeouts.total or 86400.0)
        head = _encode_head(method, url, headers, len(body))
        for attempt in (1, 2):
            conn, reused = await self._acquire(url.origin, timeouts, verify_tls, egress)
            conn.send(head, body)
            first_byte = loop.time() + timeouts.first_byte
            try:
                if first_byte < deadline:
                    await conn.wait_headers(first_byte, "first byte")
                else:
                    await conn.wait_headers(deadline, "total")
            except ConnectionClosed as exc:
                conn.abort()
                # A pooled connection the server had already closed: retry once on a fresh one.
                if reused and exc.before_response and attempt == 1:
                    continue
                raise
            except BaseException:
                conn.abort()
                raise
            return UpstreamResponse(self, conn, timeouts.read, deadline, caps)
        raise AssertionError("unreachable")

    async def _acquire(
        self, origin: Origin, timeouts: Timeouts, verify_tls: bool, egress: EgressPolicy | None
    ) -> tuple[_Connection, bool]:
        if self._closed:
            raise ConnectError("HTTP client is closed")
        key: PoolKey = origin if egress is None else (origin, "egress")
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._idle_timeout:
                return conn, True
            conn.abort()
        loop = asyncio.get_running_loop()
        ssl_context = self._ssl_context(verify_tls) if origin.is_tls else None
        try:
            async with asyncio.timeout(timeouts.connect):
                if egress is None:
                    addresses = [origin.host]
                else:  # dial only what the policy checked: no second lookup to rebind
                    addresses = await egress.resolve(origin.host, origin.port)
                conn = await self._connect(loop, key, origin, addresses, ssl_context)
        except TimeoutError:
            raise UpstreamTimeout("connect") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {origin.host_header}: {exc}") from None
        return conn, False

    @staticmethod
    async def _connect(
        loop: asyncio.AbstractEventLoop,
        key: PoolKey,
        origin: Origin,
        addresses: list[str],
        ssl_context: ssl.SSLContext | None,
    ) -> _Connection:
        """The first of `addresses` that accepts a connection (TLS names the origin host)."""
        error: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin, key),
                    address,
                    origin.port,
                    ssl=ssl_context,
                    server_hostname=origin.host if ssl_context else None,
                )
                return conn
            except OSError as exc:
                error = exc
        assert error is not None
        raise error

    def _release(self, conn: _Connection) -> None:
        if not conn.reusable or self._closed:
            conn.abort()
            return
        idle = self._idle.setdefault(conn.pool_key, [])
        if len(idle) >= self._max_idle:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _ssl_context(self, verify: bool) -> ssl.SSLContext:
        context = self._ssl_contexts.get(verify)
        if context is None:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl_contexts[verify] = context
        return context

    def idle_connections(self, origin: Origin) -> int:
        return len(self._idle.get(origin, ()))

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.abort()
        self._idle.clear()


def _expire(waiter: asyncio.Future[None], phase: str) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(phase))


def _encode_head(method: str, url: URL, headers: Iterable[tuple[str, str]], length: int) -> bytes:
    lines = [f"{method} {url.target} HTTP/1.1", f"host: {url.origin.host_header}"]
    for name, value in headers:
        # Values can come from config or clients: never let one inject a header line.
        lines.append(f"{name}: {value.translate(_FORBIDDEN_HEADER_CHARS)}")
    if length or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {length}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1", "replace")
