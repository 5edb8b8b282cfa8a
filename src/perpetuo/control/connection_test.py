""" "Test connection" for a stored credential: one cheap authenticated request upstream.

The address is a tenant's, so the call goes through the egress policy, and every way of
not getting an HTTP answer (refused by the policy, DNS, connection refused, reset, TLS,
timeout, garbage) gives the same message: the test must not work as a port scanner.
"""

from __future__ import annotations

import time
from typing import Any

from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.providers.registry import adapter_for, build_target
from perpetuo.schema.errors import UpstreamError
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.egress import EgressPolicy
from perpetuo.transport.errors import TransportError
from perpetuo.transport.url import Timeouts

UNREACHABLE = (
    "Could not reach the provider at this address, or the gateway's egress policy does not "
    "allow it."
)
_TIMEOUTS = Timeouts(connect=5, first_byte=10, read=10, total=15)


async def test_connection(
    client: HTTPClient, row: Any, secret: str, egress: EgressPolicy
) -> dict[str, Any]:
    """{ok, status, latency_ms, message}: lists the provider's models, which every provider
    offers, needs the key, and costs nothing."""
    provider = ProviderConfig(
        type=row.provider_type, api_base=row.api_base, api_key=secret, api_version=row.api_version
    )
    adapter = adapter_for(row.provider_type)
    try:
        target = build_target(
            row.name, provider, DeploymentConfig(provider=row.name, model="-"), egress
        )
    except ValueError as exc:
        return _result(False, None, None, str(exc))
    try:
        if target.credentials is not None:  # a cloud provider's token, fetched first
            await target.credentials.ready(client)
        call = adapter.probe_request(target)
    except UpstreamError as exc:
        return _result(False, None, None, exc.message)
    except TransportError:
        return _result(False, None, None, UNREACHABLE)
    started = time.perf_counter()
    try:
        egress.check_url(str(call.url))
        response = await client.request(
            call.method,
            call.url,
            call.headers,
            call.body,
            _TIMEOUTS,
            verify_tls=target.verify_tls,
            egress=egress,
        )
        body = await response.read()
    except TransportError:
        return _result(False, None, None, UNREACHABLE)
    latency = round((time.perf_counter() - started) * 1000, 1)
    if response.status < 300:
        return _result(True, response.status, latency, "The provider accepted the credential.")
    error: UpstreamError = adapter.error(response.status, response.headers, body)
    message = f"The provider answered {response.status}: {error.message}"
    return _result(False, response.status, latency, message)


def _result(ok: bool, status: int | None, latency: float | None, message: str) -> dict[str, Any]:
    return {"ok": ok, "status": status, "latency_ms": latency, "message": message}
