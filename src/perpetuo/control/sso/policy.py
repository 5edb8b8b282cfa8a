"""Domains where single sign-on is required: no password sign-in, sign-up, reset or change
for their addresses, with a message that says which provider to use instead.

The refusal depends only on the address's domain, never on whether an account exists, so it
tells nobody which accounts are registered. There is no exception for administrators: the
master key and the CLI stay the way back in if a provider breaks.
"""

from __future__ import annotations

from perpetuo.control.plane import ControlPlane
from perpetuo.control.sso.spec import ProviderSpec
from perpetuo.schema.errors import ErrorType, GatewayError


def sso_required(spec: ProviderSpec, email: str) -> GatewayError:
    domain = spec.domain_of(email)
    return GatewayError(
        403,
        f"Accounts at {domain} sign in with single sign-on: use “Sign in with {spec.name}”. "
        "Passwords are turned off for them.",
        type=ErrorType.PERMISSION,
        code="sso_required",
    )


async def refuse_password(plane: ControlPlane, email: str) -> None:
    """Raise 403 `sso_required` when this address must sign in through a provider."""
    spec = await plane.sso.required_for(plane, email)
    if spec is not None:
        raise sso_required(spec, email)
