"""Signing out at the identity provider too (OpenID Connect RP-Initiated Logout 1.0): where
to send the browser once the session here has ended, if the session came from a provider
that advertises an `end_session_endpoint`. The provider sends the browser back to the
sign-in page (register it as a post-logout redirect URI there).
"""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from sqlalchemy import select

from perpetuo.control.plane import ControlPlane
from perpetuo.schema.errors import GatewayError
from perpetuo.store.sso_tables import sso_sessions

LANDING = "/ui/login"


async def provider_logout(plane: ControlPlane, session_id: str) -> tuple[str, str] | None:
    """(the provider's logout URL, its name), or None when there is nothing to end there."""
    async with plane.db.connect() as conn:
        row = (
            await conn.execute(select(sso_sessions).where(sso_sessions.c.session_id == session_id))
        ).first()
    if row is None:
        return None
    try:
        spec = await plane.sso.find(plane, row.provider_key)
        if spec is None or not spec.is_oidc:
            return None
        endpoint = (await plane.sso.metadata(spec)).end_session_endpoint
    except GatewayError:  # the provider is gone or unreachable: the session here has ended
        return None
    if not endpoint:
        return None
    params = [
        ("client_id", spec.client_id),
        ("post_logout_redirect_uri", plane.sso.base_url + LANDING),
    ]
    if row.id_token:
        params.append(("id_token_hint", row.id_token))
    return add_params_to_uri(endpoint, params), spec.name
