"""Transport failures, each telling the router whether the upstream may have seen the request."""

from __future__ import annotations


class TransportError(Exception):
    """The upstream could not be reached or did not answer properly."""

    kind = "transport"


class ConnectError(TransportError):
    """No connection could be opened (refused, DNS, TLS handshake)."""

    kind = "connect_error"


class ConnectionClosed(TransportError):
    """The upstream closed or reset the connection before the response was complete."""

    kind = "connection_reset"

    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


class UpstreamTimeout(TransportError):
    """A connect, first-byte, read or total deadline passed."""

    kind = "timeout"

    def __init__(self, phase: str) -> None:
        super().__init__(f"upstream {phase} timeout")
        self.phase = phase


class ProtocolError(TransportError):
    """The upstream answered with something that is not valid HTTP/1.1."""

    kind = "protocol_error"


class ResponseTooLarge(TransportError):
    """The upstream sent more than the deployment's caps allow (body, event, decoded size)."""

    kind = "response_too_large"

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"upstream {what} exceeds the limit of {limit}")
        self.what = what
        self.limit = limit
