"""A pooled keep-alive HTTP/1.1 client for talking to LLM providers.

Built on asyncio protocols and httptools (transport/connection.py) because the upstream call
is most of the gateway's per-request CPU: general-purpose async clients cost several times
more per request. It does exactly what upstream calls need: keep-alive pools per origin,
TLS, chunked and content-length bodies, gzip, streaming with back-pressure, and timeouts
for connect, first byte, silence between chunks and the whole exchange. Proxies and custom
TLS settings (transport/proxy.py, transport/tls.py) are looked at only when configured.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable

from perpetuo.transport.caps import BodyBudget, ResponseCaps
from perpetuo.transport.connection import Body, Connection
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.errors import ConnectError, ConnectionClosed, UpstreamTimeout
from perpetuo.transport.proxy import Proxy, ProxyEnvironment, connect_through
from perpetuo.transport.response import DEFAULT_CAPS, UpstreamResponse
from perpetuo.transport.route import ConnectOptions, route_for
from perpetuo.transport.tls import SSLContexts, TLSSettings
from perpetuo.transport.url import URL, Origin, Timeouts

# Trusted calls pool by origin; policy-checked (tenant) calls apart, so a connection a
# trusted call opened to an internal address is never handed to a tenant's request.
# Connections through a proxy or with custom TLS settings pool by those too: a tunnel is
# never reused for a direct call, nor a connection made with one client certificate for
# a call that asked for another.
PoolKey = Origin | tuple[Origin, str] | tuple[Origin, bool, Proxy | None, TLSSettings | None]
RouteToken = tuple[Origin, bool, ConnectOptions | None]
Route = tuple[PoolKey, Proxy | None, TLSSettings | None]
_MAX_ROUTES = 4096
_FORBIDDEN_HEADER_CHARS = str.maketrans("", "", "\r\n\0")

__all__ = ["HTTPClient", "UpstreamResponse"]


class HTTPClient:
    """Keep-alive connection pools keyed by origin, shared by every upstream call.

    `proxies`: the environment's outbound proxies (ProxyEnvironment.from_environ); None when
    there are none, and then only calls with their own ConnectOptions look at routes."""

    def __init__(
        self,
        *,
        max_idle_per_origin: int = 256,
        idle_timeout: float = 60.0,
        max_buffered_bytes: int = 64 * 1024 * 1024,
        proxies: ProxyEnvironment | None = None,
    ) -> None:
        self.body_budget = BodyBudget(max_buffered_bytes)  # see transport/caps.py
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._max_idle = max_idle_per_origin
        self._idle_timeout = idle_timeout
        self._ssl = SSLContexts()
        self._proxies = proxies
        self._routes: dict[RouteToken, Route] = {}
        self._closed = False

    async def request(
        self,
        method: str,
        url: URL,
        headers: Iterable[tuple[str, str]],
        body: Body = b"",
        timeouts: Timeouts | None = None,
        *,
        deadline: float | None = None,
        verify_tls: bool = True,
        egress: EgressPolicy | None = None,
        caps: ResponseCaps = DEFAULT_CAPS,
        connection: ConnectOptions | None = None,
    ) -> UpstreamResponse:
        """Send a request and wait for the response head.

        `deadline` (event-loop time) bounds the whole exchange, body included; the
        timeouts bound each phase within it. With `egress` (tenant-supplied URLs), the
        host is resolved and checked by the policy, and only a checked address is dialled;
        such connections live in pools of their own, never shared with trusted calls.
        `caps` bound what the response may make us hold (see transport/caps.py).
        `connection`: the provider's proxy and TLS settings (its `tls` replaces `verify_tls`)."""
        timeouts = timeouts or Timeouts()
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + (timeouts.total or 86400.0)
        length = len(body) if isinstance(body, bytes) else sum(len(piece) for piece in body)
        head = _encode_head(method, url, headers, length)
        for attempt in (1, 2):
            conn, reused = await self._acquire(url.origin, timeouts, verify_tls, egress, connection)
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
        self,
        origin: Origin,
        timeouts: Timeouts,
        verify_tls: bool,
        egress: EgressPolicy | None,
        options: ConnectOptions | None,
    ) -> tuple[Connection, bool]:
        if self._closed:
            raise ConnectError("HTTP client is closed")
        if options is None and self._proxies is None:  # the direct path: nothing else to look at
            key: PoolKey = origin if egress is None else (origin, "egress")
            proxy = tls = None
        else:
            key, proxy, tls = self._route(origin, egress, options)
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._idle_timeout:
                return conn, True
            conn.abort()
        loop = asyncio.get_running_loop()
        via = f" through the proxy {proxy}" if proxy else ""
        try:
            ssl_context = None
            if origin.is_tls:
                ssl_context = self._ssl.get(tls) if tls else self._ssl.default(verify_tls)
            async with asyncio.timeout(timeouts.connect):
                if proxy is not None:
                    conn = Connection(origin, key)
                    await self._tunnel(loop, conn, proxy, egress, ssl_context)
                    return conn, False
                if egress is None:
                    addresses = [origin.host]
                else:  # dial only what the policy checked: no second lookup to rebind
                    addresses = await egress.resolve(origin.host, origin.port)
                conn = await self._connect(loop, key, origin, addresses, ssl_context)
        except TimeoutError:
            raise UpstreamTimeout("connect") from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConnectError(f"cannot connect to {origin.host_header}{via}: {exc}") from None
        return conn, False

    @staticmethod
    async def _connect(
        loop: asyncio.AbstractEventLoop,
        key: PoolKey,
        origin: Origin,
        addresses: list[str],
        ssl_context: ssl.SSLContext | None,
    ) -> Connection:
        """The first of `addresses` that accepts a connection (TLS names the origin host)."""
        error: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: Connection(origin, key),
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

    async def _tunnel(
        self,
        loop: asyncio.AbstractEventLoop,
        conn: Connection,
        proxy: Proxy,
        egress: EgressPolicy | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        """`conn` through `proxy`. A tenant's destination is checked here, as on the direct
        path, and the proxy is asked for the checked address (see EgressPolicy.tunnel_targets)."""
        origin = conn.origin
        if egress is None:
            targets = [origin.host]
        else:
            targets = await egress.tunnel_targets(origin.host, origin.port)
        proxy_tls = self._ssl.default(True) if proxy.origin.is_tls else None
        await connect_through(loop, proxy, proxy_tls, targets, origin, conn, ssl_context)

    def _route(
        self, origin: Origin, egress: EgressPolicy | None, options: ConnectOptions | None
    ) -> Route:
        """The pool, proxy and TLS settings of calls to `origin` with `options` (kept)."""
        token = (origin, egress is not None, options)
        known = self._routes.get(token)
        if known is None:
            proxy, tls = route_for(origin, options, self._proxies)
            key: PoolKey = origin if egress is None else (origin, "egress")
            if proxy is not None or tls is not None:
                key = (origin, egress is not None, proxy, tls)
            if len(self._routes) >= _MAX_ROUTES:  # tenant origins are many; keep it bounded
                self._routes.clear()
            known = self._routes[token] = (key, proxy, tls)
        return known

    def _release(self, conn: Connection) -> None:
        if not conn.reusable or self._closed:
            conn.abort()
            return
        idle = self._idle.setdefault(conn.pool_key, [])
        if len(idle) >= self._max_idle:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def idle_connections(self, origin: Origin) -> int:
        """Idle direct connections to `origin` made for trusted calls."""
        return len(self._idle.get(origin, ()))

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.abort()
        self._idle.clear()


def _encode_head(method: str, url: URL, headers: Iterable[tuple[str, str]], length: int) -> bytes:
    lines = [f"{method} {url.target} HTTP/1.1", f"host: {url.origin.host_header}"]
    for name, value in headers:
        # Values can come from config or clients: never let one inject a header line.
        lines.append(f"{name}: {value.translate(_FORBIDDEN_HEADER_CHARS)}")
    if length or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {length}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1", "replace")
