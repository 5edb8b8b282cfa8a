"""Tenant-supplied URLs (credential endpoints, webhooks), checked when they are saved.

The same policy checks them again at connect time (transport/egress.py); this early check
gives the tenant a clear 422 instead of a deployment that can never connect.
"""

from __future__ import annotations

from perpetuo.config.model import EgressConfig
from perpetuo.control.errors import invalid
from perpetuo.control.plane import ControlPlane
from perpetuo.transport.egress import EgressPolicy, EgressRefused, build_policy


def check_tenant_url(plane: ControlPlane, url: str | None, field: str) -> None:
    if url is None:
        return
    try:
        plane.egress.check_url(url)
    except EgressRefused as exc:
        raise invalid(f"{field}: {exc}.", field) from None


def policy_for(config: EgressConfig, host: str | None, port: int | None) -> EgressPolicy:
    """The operator's `egress` settings as a policy, refusing the gateway's own address."""
    return build_policy(
        allow_http=config.allow_http,
        allow_private=config.allow_private,
        allow_hosts=config.allow_hosts,
        deny_hosts=config.deny_hosts,
        allow_cidrs=config.allow_cidrs,
        deny_cidrs=config.deny_cidrs,
        listen_host=host,
        listen_port=port,
        proxy_resolves=config.proxy_resolves,
    )
