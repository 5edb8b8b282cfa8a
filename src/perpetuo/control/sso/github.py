"""GitHub sign-in: OAuth 2.0 without OpenID Connect. The code is exchanged for a token, and
who signed in comes from the REST API: the user (its numeric id is the stable subject; the
login can be renamed) and the e-mail addresses, of which only the primary one, and only
once GitHub has verified it, identifies the person here.
"""

from __future__ import annotations

from typing import Any

from perpetuo.control.errors import forbidden
from perpetuo.control.sso.fetch import call, provider_failed
from perpetuo.control.sso.spec import ProviderSpec
from perpetuo.transport.client import HTTPClient

API_HEADERS = [("accept", "application/vnd.github+json"), ("x-github-api-version", "2022-11-28")]


async def github_identity(
    http: HTTPClient, spec: ProviderSpec, access_token: str
) -> dict[str, Any]:
    """Claims shaped like OpenID Connect's: sub, email, email_verified, name, login."""
    headers = [*API_HEADERS, ("authorization", f"Bearer {access_token}")]
    status, user = await call(http, spec, "GET", f"{spec.api_base}/user", headers=headers)
    if status != 200 or not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise provider_failed(f"GitHub's user API answered {status}.")
    status, emails = await call(http, spec, "GET", f"{spec.api_base}/user/emails", headers=headers)
    if status != 200 or not isinstance(emails, list):
        raise provider_failed(
            f"GitHub's e-mail API answered {status} (does the app ask for the user:email scope?)."
        )
    primary = next((e for e in emails if isinstance(e, dict) and e.get("primary")), None)
    if primary is None or not isinstance(primary.get("email"), str):
        raise forbidden("Your GitHub account has no primary e-mail address.")
    if primary.get("verified") is not True:
        raise forbidden(
            "The primary e-mail address of your GitHub account is not verified: verify it on "
            "GitHub, then sign in again."
        )
    return {
        "sub": str(user["id"]),
        "email": primary["email"],
        "email_verified": True,
        "name": user.get("name") or user.get("login") or "",
        "login": user.get("login"),
    }
