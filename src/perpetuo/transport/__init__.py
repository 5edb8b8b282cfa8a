"""Upstream HTTP: a pooled keep-alive HTTP/1.1 client, URLs, SSE framing."""

from perpetuo.transport.client import HTTPClient, UpstreamResponse
from perpetuo.transport.errors import (
    ConnectError,
    ConnectionClosed,
    ProtocolError,
    TransportError,
    UpstreamTimeout,
)
from perpetuo.transport.url import URL, Timeouts

__all__ = [
    "URL",
    "ConnectError",
    "ConnectionClosed",
    "HTTPClient",
    "ProtocolError",
    "Timeouts",
    "TransportError",
    "UpstreamResponse",
    "UpstreamTimeout",
]
