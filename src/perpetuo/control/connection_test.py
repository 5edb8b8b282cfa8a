""" "Test connection" for a stored credential: one cheap authenticated request upstream."""

from __future__ import annotations

import time
from typing import Any

from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.providers.registry import adapter_for, build_target
from perpetuo.schema.errors import UpstreamError
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.errors import TransportError
from perpetuo.transport.url import Timeouts


async def test_connection(client: HTTPClient, row: Any, secret: str) -> dict[str, Any]:
    """{ok, status, latency_ms, message}: lists the provider's models, which every provider
    offers, needs the key, and costs nothing."""
    provider = ProviderConfig(
        type=row.provider_type, api_base=row.api_base, api_key=secret, api_version=row.api_version
    )
    adapter = adapter_for(row.provider_type)
    try:
        target = build_target(row.name, provider, DeploymentConfig(provider=row.name, model="-"))
    except ValueError as exc:
        return {"ok": False, "status": None, "latency_ms": None, "message": str(exc)}
    call = adapter.probe_request(target)
    started = time.perf_counter()
    try:
        response = await client.request(
            call.method,
            call.url,
            call.headers,
            call.body,
            Timeouts(connect=5, first_byte=10, read=10, total=15),
            verify_tls=target.verify_tls,
        )
        body = await response.read()
    except TransportError as exc:
        return {
            "ok": False,
            "status": None,
            "latency_ms": None,
            "message": f"Could not reach the provider: {exc}",
        }
    latency = round((time.perf_counter() - started) * 1000, 1)
    if response.status < 300:
        return {
            "ok": True,
            "status": response.status,
            "latency_ms": latency,
            "message": "The provider accepted the credential.",
        }
    error: UpstreamError = adapter.error(response.status, response.headers, body)
    return {
        "ok": False,
        "status": response.status,
        "latency_ms": latency,
        "message": f"The provider answered {response.status}: {error.message}",
    }
