"""Outbound proxies: which proxy a connection goes through, and the tunnel through it.

The environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, lower-case forms first) applies to
every upstream call; a provider's own `proxy` setting replaces it for that provider. Every
upstream, https or plain http, is reached through an HTTP CONNECT tunnel, so the origin gets
the same bytes as on a direct connection and `Proxy-Authorization` is sent once per
connection, to the proxy only; TLS to the origin then runs inside the tunnel.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from perpetuo.transport.errors import ConnectError
from perpetuo.transport.url import Origin

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_ANSWER = 16 * 1024  # a proxy's answer to CONNECT: status line and headers


class ProxyError(ConnectError):
    """The proxy could not be reached or would not open the tunnel. Messages name the
    proxy's host and port, never its credentials. `status`: the proxy's answer, if any."""

    kind = "proxy_error"

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Proxy:
    origin: Origin  # the proxy itself: http, or https (TLS to the proxy too)
    authorization: str | None = field(default=None, repr=False)  # Basic, from user:password@

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """`http://[user:password@]host[:port]`; a URL without scheme is taken as http, a
        missing port as the scheme's (80, 443). ValueError never repeats the credentials."""
        text = url.strip()
        if "://" not in text:
            text = f"http://{text}"
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ValueError("the proxy URL is not valid (expected http://host:port)") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"proxy scheme {scheme!r} is not supported (use http or https)")
        if not parts.hostname:
            raise ValueError("the proxy URL has no host")
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        origin = Origin(scheme, parts.hostname, port or (443 if scheme == "https" else 80))
        return cls(origin, authorization)

    def __str__(self) -> str:
        host = f"[{self.origin.host}]" if ":" in self.origin.host else self.origin.host
        return f"{self.origin.scheme}://{host}:{self.origin.port}"


@dataclass(frozen=True, slots=True)
class NoProxy:
    """NO_PROXY: hosts reached directly. Entries, comma- or space-separated: `*` (every
    host); a name, matching itself and every name under it (a leading `.` or `*.` changes
    nothing: `.example.com` is `example.com`); an IP address or CIDR network, matching
    addresses written in the URL (names are not resolved for this); any of them with
    `:port` to match that port only. Unreadable entries are ignored."""

    everything: bool = False
    names: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[tuple[Network, int | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> NoProxy:
        names: list[tuple[str, int | None]] = []
        networks: list[tuple[Network, int | None]] = []
        for raw in text.replace(",", " ").split():
            entry = raw.strip().lower()
            if entry == "*":
                return cls(everything=True)
            entry, port = _split_port(entry)
            if entry is None:
                continue
            try:
                networks.append((ipaddress.ip_network(entry, strict=False), port))
                continue
            except ValueError:
                pass
            name = entry.removeprefix("*").lstrip(".").rstrip(".")
            if name:
                names.append((name, port))
        return cls(names=tuple(names), networks=tuple(networks))

    def matches(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        host = host.strip("[]").rstrip(".").lower()
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            return any(address in net and p in (None, port) for net, p in self.networks)
        for name, p in self.names:
            if p in (None, port) and (host == name or host.endswith("." + name)):
                return True
        return False


def _split_port(entry: str) -> tuple[str | None, int | None]:
    """(host or network, port): `host:80`, `[::1]:80`; a bare IPv6 address has no port."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None, None
        return host, int(rest[1:]) if rest else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return (host, int(port)) if port.isdigit() else (None, None)
    return entry, None


@dataclass(frozen=True, slots=True)
class ProxyEnvironment:
    """The proxies the environment names, per upstream scheme, and the hosts that bypass them."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: NoProxy = NoProxy()

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> ProxyEnvironment | None:
        """None when no proxy is set (the client then pays nothing). A lower-case variable
        wins over its upper-case form, even empty (as in curl and Python's urllib).
        ValueError names the variable that holds an unusable URL."""
        proxies: dict[str, Proxy | None] = {}
        for scheme in ("http", "https"):
            name, value = _variable(env, f"{scheme}_proxy")
            try:
                proxies[scheme] = Proxy.parse(value) if value.strip() else None
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if proxies["http"] is None and proxies["https"] is None:
            return None
        _, no_proxy = _variable(env, "no_proxy")
        return cls(proxies["http"], proxies["https"], NoProxy.parse(no_proxy))

    def proxy_for(self, origin: Origin) -> Proxy | None:
        """The proxy for `origin`, or None: direct. Link-local addresses are always direct:
        they name this machine's own link (the cloud metadata service, which a proxy would
        answer for its own machine: its credentials, not ours)."""
        proxy = self.https if origin.is_tls else self.http
        if proxy is None or self.no_proxy.matches(origin.host, origin.port):
            return None
        try:
            if ipaddress.ip_address(origin.host).is_link_local:
                return None
        except ValueError:
            pass
        return proxy

    def describe(self) -> str:
        parts = [f"{s}: {p}" for s, p in (("https", self.https), ("http", self.http)) if p]
        return ", ".join(parts)


def _variable(env: Mapping[str, str], lower: str) -> tuple[str, str]:
    if lower in env:
        return lower, env[lower]
    return lower.upper(), env.get(lower.upper(), "")


# -- the tunnel ---------------------------------------------------------------------------


class _TunnelSetup(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT; nothing else is expected before TLS starts."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.answer.set_result(bytes(self._buffer[: end + 4]))
        elif len(self._buffer) > _MAX_ANSWER:
            self.answer.set_exception(ConnectionError("endless answer to CONNECT"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(ConnectionError("the proxy closed the connection"))


async def open_tunnel(
    loop: asyncio.AbstractEventLoop,
    proxy: Proxy,
    proxy_tls: ssl.SSLContext | None,
    host: str,
    port: int,
) -> asyncio.Transport:
    """A transport to the proxy, tunnelled to `host:port` (an address the caller checked,
    or a name the proxy resolves). ProxyError when the proxy cannot be reached or refuses."""
    try:
        transport, setup = await loop.create_connection(
            _TunnelSetup,
            proxy.origin.host,
            proxy.origin.port,
            ssl=proxy_tls,
            server_hostname=proxy.origin.host if proxy_tls else None,
        )
    except (OSError, ssl.SSLError) as exc:
        raise ProxyError(f"cannot connect to the proxy {proxy}: {exc}") from None
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n"
    if proxy.authorization:
        head += f"proxy-authorization: {proxy.authorization}\r\n"
    transport.write(f"{head}\r\n".encode("latin-1"))
    try:
        answer = await setup.answer
    except ConnectionError as exc:
        transport.abort()
        raise ProxyError(f"the proxy {proxy} did not open a tunnel: {exc}") from None
    except BaseException:
        transport.abort()
        raise
    status, reason = _status(answer)
    if not 200 <= status < 300:
        transport.abort()
        if status == 407:
            why = "refused the credentials" if proxy.authorization else "requires credentials"
            raise ProxyError(f"the proxy {proxy} {why} (407 {reason})", status)
        message = f"the proxy {proxy} refused to connect to {authority} ({status} {reason})"
        raise ProxyError(message, status)
    transport.pause_reading()  # until the protocol that takes the tunnel over is set
    return transport  # type: ignore[return-value]


async def connect_through(
    loop: asyncio.AbstractEventLoop,
    proxy: Proxy,
    proxy_tls: ssl.SSLContext | None,
    targets: list[str],
    origin: Origin,
    protocol: asyncio.Protocol,
    origin_tls: ssl.SSLContext | None,
) -> asyncio.Transport:
    """`protocol` connected to `origin` through a tunnel to the first of `targets` the proxy
    reaches (a next one only when the proxy says it could not: 5xx), with TLS to the origin
    inside the tunnel when `origin_tls` is given (SNI and verification name the origin)."""
    error: ProxyError | None = None
    for target in targets:
        try:
            tunnel = await open_tunnel(loop, proxy, proxy_tls, target, origin.port)
            break
        except ProxyError as exc:
            error = exc
            if exc.status < 500:
                raise
    else:
        assert error is not None
        raise error
    if origin_tls is None:
        tunnel.set_protocol(protocol)
        protocol.connection_made(tunnel)
        tunnel.resume_reading()
        return tunnel
    try:
        transport = await loop.start_tls(tunnel, protocol, origin_tls, server_hostname=origin.host)
    except BaseException:
        tunnel.abort()
        raise
    assert transport is not None
    protocol.connection_made(transport)
    return transport  # type: ignore[return-value]


def _status(answer: bytes) -> tuple[int, str]:
    line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return 0, "not an HTTP answer"
    return int(parts[1]), (parts[2] if len(parts) > 2 else "").strip()[:80]
