"""HTTP calls to identity providers: discovery, keys, tokens, user info, GitHub's API.

A workspace's provider is a tenant's address, so its calls go through the egress policy (the
address checked when the URL is built and again at connect time). Every way of not getting
an answer gives the same message: sign-in must not work as a port scanner. Answers are
small, so they are capped at a megabyte; redirects are not followed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from perpetuo.control.sso.spec import ProviderSpec
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.transport.caps import ResponseCaps
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.errors import TransportError
from perpetuo.transport.url import URL, Timeouts

UNREACHABLE = (
    "Could not reach the identity provider, or the gateway's egress policy does not allow "
    "its address."
)
_TIMEOUTS = Timeouts(connect=5, first_byte=10, read=10, total=15)
_MIB = 1024 * 1024
_CAPS = ResponseCaps(max_body_bytes=_MIB, max_event_bytes=_MIB, max_decompressed_bytes=_MIB)


def provider_failed(message: str, code: str = "sso_provider_error") -> GatewayError:
    """The provider could not be used (unreachable, or its answer was wrong): 502."""
    return GatewayError(502, message, type=ErrorType.UPSTREAM, code=code)


async def call(
    http: HTTPClient,
    spec: ProviderSpec,
    method: str,
    url: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    form: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, the JSON answer or None)."""
    body = urlencode(form).encode() if form is not None else b""
    sent = [("accept", "application/json"), ("user-agent", "Perpetuo"), *headers]
    if form is not None:
        sent.append(("content-type", "application/x-www-form-urlencoded"))
    try:
        target = URL.parse(url)
        if spec.egress is not None:
            spec.egress.check_url(url)
        response = await http.request(
            method, target, sent, body, _TIMEOUTS, egress=spec.egress, caps=_CAPS
        )
        data = await response.read()
    except (TransportError, ValueError):
        raise provider_failed(UNREACHABLE, "sso_provider_unreachable") from None
    try:
        return response.status, json.loads(data)
    except ValueError:
        return response.status, None
