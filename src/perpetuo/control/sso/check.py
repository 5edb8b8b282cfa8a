""" "Test" for a workspace's provider: read its discovery document and keys now, so an admin
learns of a wrong issuer before anyone tries to sign in. Like a credential's connection
test, every way of not getting an answer reads the same."""

from __future__ import annotations

from typing import Any

from perpetuo.control.actor import Actor
from perpetuo.control.plane import ControlPlane
from perpetuo.control.sso.admin import get_provider
from perpetuo.schema.errors import GatewayError


async def check_provider(
    plane: ControlPlane, actor: Actor, workspace_id: str, provider_id: str
) -> dict[str, Any]:
    """{ok, message, issuer, end_session_endpoint}."""
    await get_provider(plane, actor, workspace_id, provider_id)  # role and existence
    spec = await plane.sso.find(plane, provider_id, disabled=True)
    assert spec is not None  # get_provider found it
    plane.sso.cache.forget_issuer(spec.issuer or "")
    try:
        metadata = await plane.sso.metadata(spec)
        await plane.sso.cache.key_set(plane.sso.client(), spec, metadata, refresh=True)
    except GatewayError as exc:
        return {
            "ok": False,
            "message": exc.message,
            "issuer": spec.issuer,
            "end_session_endpoint": None,
        }
    return {
        "ok": True,
        "message": "The provider's discovery document and keys were read.",
        "issuer": metadata.issuer,
        "end_session_endpoint": metadata.end_session_endpoint,
    }
