"""How a connection to an origin is made: directly or through which proxy, with which TLS.

A provider's own settings (`ConnectOptions`, built once from its config) come first; the
environment's proxies apply where a provider names none. Calls with neither never get
here: the client checks for both with one test and keeps its direct path.
"""

from __future__ import annotations

from dataclasses import dataclass

from perpetuo.transport.proxy import Proxy, ProxyEnvironment
from perpetuo.transport.tls import TLSSettings
from perpetuo.transport.url import Origin


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """A provider's connection settings beyond its URL. `proxy`: that proxy, whatever the
    environment says; `direct` (the `proxy: none` setting): no proxy at all; neither: the
    environment decides. `tls`: a CA bundle or client certificate (None: system CAs)."""

    proxy: Proxy | None = None
    direct: bool = False
    tls: TLSSettings | None = None


def route_for(
    origin: Origin, options: ConnectOptions | None, environment: ProxyEnvironment | None
) -> tuple[Proxy | None, TLSSettings | None]:
    """The proxy (None: direct) and the TLS settings (None: the defaults) for `origin`."""
    if options is None:
        return (environment.proxy_for(origin) if environment else None), None
    proxy = options.proxy
    if proxy is None and not options.direct and environment is not None:
        proxy = environment.proxy_for(origin)
    return proxy, options.tls
