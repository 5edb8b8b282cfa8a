"""The egress policy: where the gateway may connect on a tenant's behalf.

Every outbound URL a tenant can influence (a workspace credential's `api_base`, a connection
test, an alert webhook, any future callback) goes through one `EgressPolicy`. Operator-made
providers (the YAML file) are trusted and never checked, so a local vLLM on 127.0.0.1 keeps
working.

Checks happen twice: `check_url` when the URL is saved (scheme, userinfo, deny list, literal
addresses: a clear 400 at once) and `resolve` at connect time, on the addresses DNS returns
then, so a name that is rebound to an internal address after it was saved is still refused.
The client then connects to the checked address itself, never re-resolving the name.
Through an outbound proxy the same holds: the proxy is asked to connect to the checked
address (`tunnel_targets`), unless the operator lets the proxy resolve names.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from perpetuo.transport.errors import ConnectError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not in ipaddress's private ranges on every Python version, and never a tenant's business.
_ALWAYS_INTERNAL: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "fd00:ec2::/32",  # AWS metadata over IPv6 (inside fc00::/7 too)
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
    )
)
# Cloud metadata services: refused even where private addresses are allowed.
_METADATA: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",
        "fd00:ec2::/32",  # AWS IPv6 metadata
        "100.100.100.200/32",  # Alibaba Cloud
        "192.0.0.192/32",  # Oracle Cloud
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What `allow_private` opens: addresses of the operator's own networks. Link-local (metadata
# services), multicast and unspecified addresses stay refused unless listed in allow_cidrs.
_PRIVATE: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "::1/128",
        "fc00::/7",
    )
)


class EgressRefused(ConnectError):
    """The policy refuses this destination. The message names the rule, never a probe result."""

    kind = "egress_refused"


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    allow_http: bool = False
    allow_private: bool = False
    allow_hosts: tuple[str, ...] = ()  # when set, only these names (exact, or "*.suffix")
    deny_hosts: tuple[str, ...] = ()
    allow_cidrs: tuple[Network, ...] = ()  # always allowed (checked before anything else)
    deny_cidrs: tuple[Network, ...] = ()  # always refused
    # The gateway's own listen addresses (host, port): a tenant URL pointing back at the
    # gateway would make it call itself.
    own_ports: frozenset[int] = field(default_factory=frozenset)
    own_addresses: frozenset[IPAddress] = field(default_factory=frozenset)
    # Through a proxy, send it the host name (the proxy resolves, and its own rules must
    # refuse internal addresses) instead of an address resolved and checked here.
    proxy_resolves: bool = False

    # -- at save time ------------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Raise EgressRefused if `url` can never be allowed: wrong scheme, credentials in
        the URL, a denied or unlisted host, or a literal address the policy refuses."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or (scheme == "http" and not self.allow_http):
            allowed = "http or https" if self.allow_http else "https"
            raise EgressRefused(f"the URL scheme must be {allowed}")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise EgressRefused("URLs with credentials (user:password@) are not allowed")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise EgressRefused("the URL has no host")
        self.check_host(host)
        literal = literal_address(host)
        if literal is not None:
            port = parts.port or (443 if scheme == "https" else 80)
            self.check_address(literal, port)

    def check_host(self, host: str) -> None:
        host = host.rstrip(".").lower()
        if _matches(host, self.deny_hosts):
            raise EgressRefused(f"the host {host} is not allowed by the gateway's egress policy")
        if self.allow_hosts and not _matches(host, self.allow_hosts):
            raise EgressRefused(f"the host {host} is not in the gateway's allowed hosts")

    def check_address(self, address: IPAddress, port: int) -> None:
        """Raise EgressRefused unless the policy allows connecting to `address`."""
        reason = self.refusal(address, port)
        if reason is not None:
            raise EgressRefused(f"the address {address} is not allowed ({reason})")

    def refusal(self, address: IPAddress, port: int) -> str | None:
        """Why `address` is refused, or None when it is allowed."""
        address = _unwrap(address)
        if port in self.own_ports and (address.is_loopback or address in self.own_addresses):
            return "the gateway itself"
        if any(address in net for net in self.deny_cidrs):
            return "denied network"
        if any(address in net for net in self.allow_cidrs):
            return None
        if address.is_multicast or address.is_unspecified:
            return "not a unicast address"
        if address.is_link_local or any(address in net for net in _METADATA):
            return "link-local or metadata address"
        if self.allow_private and any(address in net for net in _PRIVATE):
            return None
        if address.is_loopback:
            return "loopback address"
        if address.is_private or any(address in net for net in _ALWAYS_INTERNAL):
            return "private address"
        if not address.is_global or address.is_reserved:
            return "reserved address"
        return None

    # -- at connect time ---------------------------------------------------------------------

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to: DNS answers the policy allows, in DNS order."""
        self.check_host(host)
        literal = literal_address(host)
        if literal is not None:
            self.check_address(literal, port)
            return [str(literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise EgressRefused(f"the host {host} could not be resolved") from None
        allowed: list[str] = []
        refused: str | None = None
        for family, *_, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            address = ipaddress.ip_address(sockaddr[0])
            reason = self.refusal(address, port)
            if reason is None:
                if str(address) not in allowed:
                    allowed.append(str(address))
            else:
                refused = reason
        if not allowed:
            why = f" ({refused})" if refused else ""
            raise EgressRefused(f"the host {host} resolves to no allowed address{why}")
        return allowed

    async def tunnel_targets(self, host: str, port: int) -> list[str]:
        """What a proxy is asked to connect to: the addresses `resolve` allows (TLS inside the
        tunnel still names the host), or with `proxy_resolves` the host name itself, once
        the host rules (and, for a literal address, the address rules) allow it."""
        if not self.proxy_resolves:
            return await self.resolve(host, port)
        self.check_host(host)
        literal = literal_address(host)
        if literal is not None:
            self.check_address(literal, port)
            return [str(literal)]
        return [host]


def literal_address(host: str) -> IPAddress | None:
    """`host` as an IP address when it is written as one, in any form a resolver accepts:
    dotted, decimal (2130706433), hex (0x7f000001), octal, short (127.1), or IPv6."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(c.isalnum() or c in ".x" for c in host):
        return None
    try:  # inet_aton accepts exactly the legacy IPv4 spellings getaddrinfo does
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address inside IPv4-mapped, NAT64, 6to4 and Teredo IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def _matches(host: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) or host == pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def local_addresses() -> frozenset[IPAddress]:
    """This machine's own addresses, as far as its name resolves (best effort)."""
    found: set[IPAddress] = set()
    try:
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(sockaddr[0]))
    except OSError:
        pass
    return frozenset(found)


def build_policy(
    *,
    allow_http: bool = False,
    allow_private: bool = False,
    allow_hosts: Iterable[str] = (),
    deny_hosts: Iterable[str] = (),
    allow_cidrs: Iterable[str] = (),
    deny_cidrs: Iterable[str] = (),
    listen_host: str | None = None,
    listen_port: int | None = None,
    proxy_resolves: bool = False,
) -> EgressPolicy:
    """A policy from the operator's settings and the gateway's own listen address."""
    own: set[IPAddress] = set(local_addresses())
    if listen_host:
        literal = literal_address(listen_host)
        if literal is not None and not literal.is_unspecified:
            own.add(literal)
    return EgressPolicy(
        allow_http=allow_http,
        allow_private=allow_private,
        allow_hosts=tuple(h.lower() for h in allow_hosts),
        deny_hosts=tuple(h.lower() for h in deny_hosts),
        allow_cidrs=tuple(ipaddress.ip_network(c, strict=False) for c in allow_cidrs),
        deny_cidrs=tuple(ipaddress.ip_network(c, strict=False) for c in deny_cidrs),
        own_ports=frozenset({listen_port} if listen_port else ()),
        own_addresses=frozenset(own),
        proxy_resolves=proxy_resolves,
    )
